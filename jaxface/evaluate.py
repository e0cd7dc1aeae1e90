"""python -m jaxface.evaluate --workdir DIR [--split validation|test|all] [--checkpoint best|last] [--tta none|flip]

Evaluates a trained workdir: needs nothing but the workdir (architecture and
preprocessing come from its config.json) and the data. Writes and prints
DIR/eval_<split>.json (n, age MAE/RMSE, CS(5), gender accuracy; overall and per
age band, race and gender) and DIR/predictions_<split>.csv.
``--split all`` evaluates every usable image of the given archive or folder,
e.g. an independent test set.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from jaxface import metrics, provenance, restore, steps, xla_options
from jaxface.data import pipeline, prepare
from jaxface.data import source as source_lib


class ImageSource(Sequence):
  """Every usable file of a download, decoded on access at ``size``: for ``--split all``."""

  def __init__(self, records: list[source_lib.Record], size: int):
    self.records, self.size = records, size

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, i: int) -> dict:
    r = self.records[i]
    return {
      "image": source_lib.decode(r.data, self.size),
      "age": r.labels.age,
      "gender": r.labels.gender,
      "race": r.labels.race,
      "file_name": r.file_name,
    }


def make_predictor(mdef: steps.ModelDef, tta: str):
  """jit (params, rest, uint8 images) -> (predicted age, P(female)); 'flip' averages with the mirror."""
  predict = steps.make_predict(mdef)

  @functools.partial(jax.jit, compiler_options=xla_options.compiler_options(jax.default_backend()))
  def run(params, rest, images):
    out = predict(params, rest, images)
    age, p = out["age"], jax.nn.sigmoid(out["gender_logit"])
    if tta == "flip":
      m = predict(params, rest, images[:, :, ::-1])
      age, p = (age + m["age"]) / 2, (p + jax.nn.sigmoid(m["gender_logit"])) / 2
    return age, p

  return run


def predict_source(
  r: restore.Restored, source: Sequence[dict], tta: str = "none", batch_size: int | None = None
) -> dict:
  """Per-example arrays over ``source``: file_name, age, gender, race, pred_age, p_female."""
  run = make_predictor(r.mdef, tta)
  bs = batch_size or r.cfg.batch_size
  cols = {k: [] for k in ("file_name", "age", "gender", "race", "pred_age", "p_female")}
  batches = pipeline.eval_dataset(source, batch_size=bs)
  for batch in tqdm(batches, desc="evaluating", total=len(batches), disable=None, mininterval=5):
    age, p = jax.device_get(run(r.params, r.rest, jnp.asarray(batch["image"])))
    m = batch["mask"]
    for k in ("age", "gender", "race"):
      cols[k].append(np.asarray(batch[k])[m])
    cols["file_name"].append(
      np.asarray([f.decode() if isinstance(f, bytes) else str(f) for f in batch["file_name"]])[m]
    )
    cols["pred_age"].append(np.asarray(age)[m])
    cols["p_female"].append(np.asarray(p)[m])
  return {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}


def load_split(r: restore.Restored, split: str, data: str | None) -> tuple[Sequence[dict], dict]:
  """The examples of ``split`` and a description of where they came from."""
  cfg = r.cfg
  if split == "all":
    path = source_lib.locate(data or cfg.data)
    records, skips = source_lib.scan(path)
    return ImageSource(records, cfg.image_size), {"source": str(path), "skipped": [s.__dict__ for s in skips]}
  b = prepare.prepare(data or cfg.data, cfg.dataset, cfg.image_size, cfg.tfds_dir)
  if split not in b.info.splits:
    raise ValueError(f"utk_face/{b.builder_config.name} has no {split!r} split (it has {sorted(b.info.splits)})")
  digest = b.info.metadata.get("splits", {}).get(split, {}).get("digest")
  return b.as_data_source(split), {"dataset": f"utk_face/{b.builder_config.name}:{b.version}", "split_digest": digest}


def write_predictions(path: Path, cols: dict) -> None:
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["file_name", "age", "pred_age", "gender", "p_female", "race"])
    for i in range(len(cols["age"])):
      w.writerow(
        [
          cols["file_name"][i],
          int(cols["age"][i]),
          f"{cols['pred_age'][i]:.3f}",
          int(cols["gender"][i]),
          f"{cols['p_female'][i]:.5f}",
          int(cols["race"][i]),
        ]
      )


def evaluate(
  workdir: str | Path, split: str = "validation", checkpoint: str = "best", tta: str = "none", data: str | None = None
) -> dict:
  t0 = time.perf_counter()
  run_info = provenance.record()
  workdir = Path(workdir)
  r = restore.load(workdir, checkpoint)
  source, origin = load_split(r, split, data)
  cols = predict_source(r, source, tta)
  result = {
    "workdir": str(workdir), "arch": r.cfg.arch, "preset": r.cfg.preset, "split": split, **origin,
    "checkpoint": checkpoint, "step": r.step, "tta": tta,
    **metrics.report(cols["age"], cols["pred_age"], cols["gender"], cols["p_female"], cols["race"]),
    "gender_confusion": metrics.confusion(cols["gender"], cols["p_female"]).tolist(),
    **run_info, "wall_s": None,
  }  # fmt: skip
  result["wall_s"] = round(time.perf_counter() - t0, 2)
  (workdir / f"eval_{split}.json").write_text(json.dumps(result, indent=2) + "\n")
  write_predictions(workdir / f"predictions_{split}.csv", cols)
  return result


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.evaluate", description=__doc__.split("\n\n")[1])
  p.add_argument("--workdir", required=True)
  p.add_argument("--data", help="UTKFace archive or folder (default: the workdir's config)")
  p.add_argument("--split", default="validation", choices=["validation", "test", "all"])
  p.add_argument("--checkpoint", default="best", choices=["best", "last"])
  p.add_argument("--tta", default="none", choices=["none", "flip"])
  args = p.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
  logging.getLogger("absl").setLevel(logging.WARNING)
  try:
    result = evaluate(args.workdir, args.split, args.checkpoint, args.tta, args.data)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(json.dumps(result, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
