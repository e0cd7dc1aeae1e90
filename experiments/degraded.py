"""Exported models on the test faces, clean and degraded as users' photos are: which holds up?

Each model (a ``.jaxface`` export) predicts the frozen test split of ``full`` as it is, and again with each
degradation users' photos carry applied to every face at one fixed strength: grayscale, sepia, faded contrast, a
blur, sensor noise, JPEG at quality 25 (``jaxface.data.quality``'s own functions, the arithmetic the photo-quality
augmentation trains with, at strengths fixed here rather than drawn). Scored with ``metrics.report`` and, with each
export's own calibration, the 90 % interval's coverage and width.

  python experiments/degraded.py --data /path/to/UTKFace.tar.gz --models A.jaxface [B.jaxface ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxface import files, metrics, provenance  # noqa: E402
from jaxface.data import pipeline, prepare, quality  # noqa: E402
from jaxface.inference import calibration  # noqa: E402
from jaxface.inference.exported import ExportedModel  # noqa: E402


def _gray(x):
  return jnp.broadcast_to((x * jnp.asarray([0.299, 0.587, 0.114])).sum(-1, keepdims=True), x.shape)


def _sepia(x):
  return jnp.clip(x @ jnp.asarray(quality.SEPIA).T, 0.0, 1.0)


def _faded(x):  # 0.6 of the contrast kept, lifted toward a paper white (as quality._aged does)
  return jnp.clip(x * 0.6 + 0.4 * 0.6, 0.0, 1.0)


def _noise(x):  # std 0.04, a fixed key: every model sees the same noise
  return jnp.clip(x + 0.04 * jax.random.normal(jax.random.key(0), x.shape), 0.0, 1.0)


CONDITIONS = {
  "clean": lambda x: x,
  "grayscale": _gray,
  "sepia": _sepia,
  "faded": _faded,
  "blur_sigma_1.2": lambda x: quality.blur(x, jnp.full((x.shape[0],), 1.2)),
  "noise_0.04": _noise,
  "jpeg_q25": lambda x: quality.jpeg_like(x, jnp.full((x.shape[0],), 25.0)),
}


def faces(data: str, size: int) -> dict[str, np.ndarray]:
  """The test split's faces (uint8) and labels, at ``size``."""
  b = prepare.prepare(data, "full", size)
  cols = {"image": [], "age": [], "gender": [], "race": []}
  for batch in pipeline.eval_dataset(b.as_data_source("test"), batch_size=64):
    m = batch["mask"]
    for k in cols:
      cols[k].append(np.asarray(batch[k])[m])
  return {k: np.concatenate(v) for k, v in cols.items()}


def score(model: ExportedModel, test: dict, condition) -> dict:
  degrade = jax.jit(lambda x: jnp.round(condition(x.astype(jnp.float32) / 255.0) * 255.0).astype(jnp.uint8))
  out = {"age": [], "p_female": [], "age_spread": []}
  for i in range(0, len(test["image"]), 64):
    x = test["image"][i : i + 64]
    n = len(x)
    if n < 64:  # one compiled shape
      x = np.concatenate([x, np.zeros((64 - n, *x.shape[1:]), x.dtype)])
    got = jax.device_get(model(degrade(x)))
    for k in out:
      out[k].append(np.asarray(got[k])[:n])
  pred = {k: np.concatenate(v) for k, v in out.items()}
  rep = metrics.report(test["age"], pred["age"], test["gender"], pred["p_female"], test["race"])
  row = {k: rep[k] for k in ("age_mae", "gender_acc", "per_race", "per_age_band")}
  cal = model.meta.get("calibration")
  if cal is not None:
    row["interval"] = calibration.report(test["age"], pred["age"], test["race"], cal, pred["age_spread"])
  return row


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", required=True, help="the UTKFace archive")
  p.add_argument("--models", nargs="+", required=True, metavar="FILE", help=".jaxface exports")
  p.add_argument("--out", default=str(ROOT / "experiments" / "results" / "degraded.json"))
  args = p.parse_args(argv)
  t0 = time.perf_counter()
  rows = {}
  for path in args.models:
    model = ExportedModel(path)
    test = faces(args.data, model.image_size)
    rows[path] = {"note": model.meta.get("note"), "n": len(test["age"])}
    for name, condition in CONDITIONS.items():
      rows[path][name] = score(model, test, condition)
      r = rows[path][name]
      print(f"{Path(path).name} {name}: age MAE {r['age_mae']:.3f}, gender {r['gender_acc']:.4f}", flush=True)
  result = {
    "what": "exports on the frozen test split of full, clean and with each photo degradation at a fixed strength",
    "conditions": list(CONDITIONS),
    "rows": rows,
    **provenance.record(time.perf_counter() - t0),
  }
  files.write_json(args.out, result)
  return 0


if __name__ == "__main__":
  sys.exit(main())
