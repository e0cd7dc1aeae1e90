"""Does an ensemble of the shipped model and another fine-tuned backbone win by more than its cost?

An exported model (``--model``; by default the shipped one) and another backbone fine-tuned with the
same recipe (``--other``: FaceRes-deep, ``experiments/faceres_deep.sh``, by default; or MobileFaceNet,
``experiments/mobilefacenet.sh``) each predict the validation and test faces of ``full`` (the shipped one here,
through its export; the other's from its evaluate runs). The ensemble averages their age distributions and
P(female): its age is the mean of the two expectations, its spread the mixture's standard deviation
sqrt(mean(s_i^2 + a_i^2) - a^2), and its 90 % interval is calibrated on validation as ``evaluate --calibrate`` does
(Mondrian by predicted age band). Scored on test with ``jaxface.metrics.report`` and ``calibration.report``, beside
each member. Its cost: two backbones' compute a face, twice the model file.

  python experiments/ensemble.py --data /path/to/UTKFace.tar.gz [--model FILE]
      [--other experiments/results/full_balanced/faceres_deep] [--out experiments/results/ensemble/ensemble.json]

The results in experiments/results/ensemble/ were made with FaceRes as the shipped model, the file at commit
12cf54b: ``git show 12cf54b:jaxface/shipped/faceres_utkface.jaxface > runs/faceres_utkface.jaxface``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxface import files, metrics, provenance, shipped  # noqa: E402
from jaxface.data import pipeline, prepare  # noqa: E402
from jaxface.inference import calibration  # noqa: E402
from jaxface.inference.exported import ExportedModel  # noqa: E402

COLS = ("age", "gender", "race", "pred_age", "p_female", "age_spread")


def read_predictions(path: Path) -> dict[str, dict]:
  with open(path, newline="") as f:
    return {r["file_name"]: r for r in csv.DictReader(f)}


def exported_predictions(model: ExportedModel, data: str, split: str) -> dict[str, dict]:
  """An exported model on the split's faces (the same images ``evaluate`` feeds a workdir at its size)."""
  b = prepare.prepare(data, "full", model.image_size)
  out = {}
  for batch in pipeline.eval_dataset(b.as_data_source(split), batch_size=64):
    m = batch["mask"]
    got = {k: np.asarray(v)[m] for k, v in model(batch["image"]).items()}
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(batch["file_name"])[m]]
    for i, name in enumerate(names):
      out[name] = {"age": batch["age"][m][i], "gender": batch["gender"][m][i], "race": batch["race"][m][i],
                   "pred_age": got["age"][i], "p_female": got["p_female"][i], "age_spread": got["age_spread"][i]}  # fmt: skip
  return out


def columns(rows: dict[str, dict], names: list[str]) -> dict[str, np.ndarray]:
  return {k: np.array([float(rows[n][k]) for n in names]) for k in COLS}


def ensemble(a: dict, b: dict) -> dict:
  age = (a["pred_age"] + b["pred_age"]) / 2
  second = (a["age_spread"] ** 2 + a["pred_age"] ** 2 + b["age_spread"] ** 2 + b["pred_age"] ** 2) / 2
  return {**a, "pred_age": age, "p_female": (a["p_female"] + b["p_female"]) / 2,
          "age_spread": np.sqrt(np.maximum(second - age**2, 0.0))}  # fmt: skip


def score(val: dict, test: dict) -> dict:
  cal = calibration.fit(val["age"], val["pred_age"], val["age_spread"], 0.9, split="validation")
  rep = metrics.report(test["age"], test["pred_age"], test["gender"], test["p_female"], test["race"].astype(int))
  interval = calibration.report(test["age"], test["pred_age"], test["race"].astype(int), cal, test["age_spread"])
  return {"test": rep, "interval_test": interval}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", required=True)
  p.add_argument(
    "--other", default=str(ROOT / "experiments" / "results" / "full_balanced" / "faceres_deep"),
    help="the other member's results folder (its predictions_validation.csv and predictions_test.csv)",
  )  # fmt: skip
  p.add_argument("--model", help="the first member, an exported model (default: the shipped one)")
  p.add_argument("--out", default=str(ROOT / "experiments" / "results" / "ensemble" / "ensemble.json"))
  args = p.parse_args(argv)
  t0 = time.perf_counter()
  other = {s: read_predictions(Path(args.other) / f"predictions_{s}.csv") for s in ("validation", "test")}
  first = ExportedModel(args.model or shipped.model())
  ship = {s: exported_predictions(first, args.data, s) for s in ("validation", "test")}
  label = f"{first.meta['arch']} ({'shipped, ' if args.model is None else ''}{first.meta['weights']})"
  members, rows = {label: ship, f"{Path(args.other).name} (float32 workdir)": other}, {}
  names = {s: sorted(other[s]) for s in other}
  for s in names:
    missing = set(names[s]) ^ set(ship[s])
    if missing:
      raise SystemExit(f"{s}: the two models' faces differ ({len(missing)} files)")
  cols = {m: {s: columns(r[s], names[s]) for s in names} for m, r in members.items()}
  for m, c in cols.items():
    rows[m] = score(c["validation"], c["test"])
  both = {s: ensemble(*(cols[m][s] for m in members)) for s in names}
  rows["ensemble (mean of the two)"] = score(both["validation"], both["test"])
  summary = {
    m: {"age_mae": r["test"]["age_mae"], "gender_acc": r["test"]["gender_acc"],
        "interval_coverage": r["interval_test"]["coverage"], "interval_width": r["interval_test"]["mean_width"],
        "asian_gender_acc": r["test"]["per_race"]["asian"]["gender_acc"],
        "coverage_by_band": {k: v.get("coverage") for k, v in r["interval_test"]["per_age_band"].items()}}
    for m, r in rows.items()
  }  # fmt: skip
  Path(args.out).parent.mkdir(parents=True, exist_ok=True)
  files.write_json(args.out, {"summary": summary, "rows": rows, "n_test": len(names["test"]),
                              **provenance.record(time.perf_counter() - t0)})  # fmt: skip
  for m, s in summary.items():
    print(
      f"{m:34s} MAE {s['age_mae']:.3f}  gender {s['gender_acc']:.4f}  interval {s['interval_coverage']:.3f} in "
      f"{s['interval_width']:.2f} y  Asian gender {s['asian_gender_acc']:.4f}"
    )
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
