"""The shipped model (a float16 .jaxface) against the workdir it was exported from, on the frozen test split.

  python experiments/shipped_check.py --workdir runs/full_balanced/faceres --model jaxface/shipped/faceres_utkface.jaxface \
      --out experiments/results/shipped [--data UTKFace.tar.gz]

Writes OUT/shipped_test.json: for the workdir (float32) and the file (float16 weights), the test split's metric
report (overall, per age band, race and gender) with the file's calibrated interval (coverage and width per band
and race); what float16 costs (the differences of MAE and accuracy, and the largest per face); and the file
through the detector: each test photo (UTKFace's 200 px chip) searched by the detector and cropped as ``predict``
does, against the same file on the dataset's crops. And OUT/predictions_test.csv: the file's own predictions,
and OUT/astronaut.json: its record for scikit-image's astronaut, which tests/test_shipped.py holds it to. Command,
commit, host, date and wall time are recorded.
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

from jaxface import faces, files, metrics, provenance  # noqa: E402
from jaxface.data import source as source_lib  # noqa: E402
from jaxface.inference import calibration, evaluation, predictions, restore  # noqa: E402
from jaxface.inference.exported import ExportedModel  # noqa: E402
from jaxface.inference.model import InferenceModel  # noqa: E402
from jaxface.inference.predictor import Predictor  # noqa: E402


def report(cols: dict, cal: dict | None) -> dict:
  out = metrics.report(cols["age"], cols["pred_age"], cols["gender"], cols["p_female"], cols["race"])
  if cal is not None:
    out["interval"] = calibration.report(cols["age"], cols["pred_age"], cols["race"], cal, cols.get("age_spread"))
  return out


def through_detector(model: Path, data: str, cols: dict) -> dict:
  """The file on each test photo through the detector (its best face), against the same file on the crops."""
  want = {str(n): i for i, n in enumerate(cols["file_name"])}
  photos = []
  for name, blob in source_lib.iter_files(source_lib.locate(data)):
    if name in want:
      with Image.open(io.BytesIO(blob)) as img:
        photos.append(faces.load_photo(img.copy(), name))
  predictor = Predictor.from_export(model)
  best: dict[str, dict] = {}
  for rec in predictor.predict_many(photos):
    if rec["status"] == "ok" and (rec["file"] not in best or rec["score"] > best[rec["file"]]["score"]):
      best[rec["file"]] = rec
  found = np.array([want[f] for f in best])
  ages = np.array([best[f]["age"] for f in best])
  p = np.array([best[f]["p_female"] for f in best])
  detected = metrics.report(cols["age"][found], ages, cols["gender"][found], p, cols["race"][found])
  crops = metrics.report(
    cols["age"][found], cols["pred_age"][found], cols["gender"][found], cols["p_female"][found], cols["race"][found]
  )
  return {
    "photos": len(photos), "faces_found": len(best), "detector": detected, "crops_same_faces": crops,
    "age_mae_gap": round(detected["age_mae"] - crops["age_mae"], 4),
    "gender_acc_gap": round(detected["gender_acc"] - crops["gender_acc"], 4),
  }  # fmt: skip


def astronaut(model: Path, out: Path) -> dict:
  """The file's record for scikit-image's astronaut, saved as tests/test_shipped.py saves it (JPEG, quality 95)."""
  from skimage import data as skdata

  photo = out / "astronaut.jpg"
  Image.fromarray(skdata.astronaut()).save(photo, quality=95)
  try:
    (rec,) = Predictor.from_export(model).predict(photo)
  finally:
    photo.unlink()
  return {**rec, "file": "astronaut.jpg"}


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--model", required=True, help="the float16 .jaxface exported from --workdir")
  p.add_argument("--out", required=True)
  p.add_argument("--data", default=None, help="UTKFace.tar.gz (default: the workdir's, or $JAXFACE_DATA)")
  args = p.parse_args()
  t0 = time.perf_counter()
  run = provenance.record()
  r = restore.load(args.workdir, "best")
  source, origin = evaluation.load_split(r, "test", args.data)
  f32 = evaluation.predict_source(InferenceModel(r), source, r.cfg.batch_size)
  exported = ExportedModel(args.model)
  f16 = evaluation.predict_source(exported, source, r.cfg.batch_size)
  cal = exported.meta.get("calibration")
  result = {
    "workdir": args.workdir, "model": args.model, "model_bytes": Path(args.model).stat().st_size, **origin,
    "weights": exported.meta.get("weights"), "step": r.step,
    "float32": report(f32, cal), "float16": report(f16, cal),
  }  # fmt: skip
  result["float16_cost"] = {
    "age_mae": round(result["float16"]["age_mae"] - result["float32"]["age_mae"], 4),
    "gender_acc_points": round(100 * (result["float16"]["gender_acc"] - result["float32"]["gender_acc"]), 3),
    "max_age_diff": round(float(np.abs(f16["pred_age"] - f32["pred_age"]).max()), 4),
    "max_p_female_diff": round(float(np.abs(f16["p_female"] - f32["p_female"]).max()), 5),
    "gender_flips": int(((f16["p_female"] > 0.5) != (f32["p_female"] > 0.5)).sum()),
  }
  result["through_detector"] = through_detector(Path(args.model), args.data or r.cfg.data, f16)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  files.write_json(out / "astronaut.json", {"record": astronaut(Path(args.model), out), **run})
  predictions.write(out / "predictions_test.csv", f16)
  files.write_json(out / "shipped_test.json", {**result, **run, "wall_s": round(time.perf_counter() - t0, 2)})
  print(f"wrote {out / 'shipped_test.json'}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
