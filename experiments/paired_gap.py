"""How far apart two runs are on the same faces: the paired age-MAE gap with a bootstrap 95 % interval.

  python experiments/paired_gap.py --pair A_DIR B_DIR [--pair ...] --out FILE [--split validation]

Each DIR holds predictions_<split>.csv (``jaxface.evaluate``). For every pair
the gap is MAE(B) - MAE(A) over the faces both scored (the two files must hold
the same faces), and its interval resamples the faces (10,000 draws, seed 0):
the sampling error of one split, not the spread between training seeds. The
same for gender accuracy (B - A). One JSON file, with the command, commit,
host, date and wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxface import files, provenance  # noqa: E402
from jaxface.inference import predictions  # noqa: E402

DRAWS = 10_000


def read(path: Path) -> dict[str, tuple[float, bool]]:
  """file_name -> (absolute age error, gender right) of one predictions file."""
  p = predictions.read(path)
  err, right = np.abs(p["pred_age"] - p["age"]), (p["p_female"] > 0.5) == (p["gender"] == 1)
  return {n: (float(e), bool(r)) for n, e, r in zip(p["file_name"], err, right, strict=True)}


def gap(a: dict, b: dict, draws: int = DRAWS) -> dict:
  """The paired gaps of B against A, each with its bootstrap 95 % interval."""
  if a.keys() != b.keys():
    raise ValueError(f"the two runs scored different faces ({len(a.keys() ^ b.keys())} in one only)")
  names = sorted(a)
  err = np.array([[a[n][0], b[n][0]] for n in names])
  right = np.array([[a[n][1], b[n][1]] for n in names], np.float64)
  d_mae, d_acc = err[:, 1] - err[:, 0], right[:, 1] - right[:, 0]
  idx = np.random.default_rng(0).integers(0, len(names), (draws, len(names)))
  ci = lambda d: [float(x) for x in np.percentile(d[idx].mean(1), [2.5, 97.5])]
  return {
    "n": len(names), "mae_a": float(err[:, 0].mean()), "mae_b": float(err[:, 1].mean()),
    "mae_gap": float(d_mae.mean()), "mae_gap_ci95": ci(d_mae),
    "gender_acc_a": float(right[:, 0].mean()), "gender_acc_b": float(right[:, 1].mean()),
    "gender_acc_gap": float(d_acc.mean()), "gender_acc_gap_ci95": ci(d_acc),
  }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--pair", nargs=2, action="append", required=True, metavar=("A_DIR", "B_DIR"))
  p.add_argument("--split", default="validation")
  p.add_argument("--out", required=True)
  a = p.parse_args(argv)
  t0 = time.perf_counter()
  run = provenance.record(argv=None if argv is None else ["experiments/paired_gap.py", *argv], device=False)
  pairs = []
  for da, db in a.pair:
    fa, fb = (Path(d) / f"predictions_{a.split}.csv" for d in (da, db))
    try:
      pairs.append({"a": da, "b": db, **gap(read(fa), read(fb))})
    except ValueError as e:
      raise SystemExit(f"{fa} against {fb}: {e}") from None
    g = pairs[-1]
    print(f"{db} - {da}: age MAE {g['mae_gap']:+.3f} (95 % {g['mae_gap_ci95'][0]:+.3f}..{g['mae_gap_ci95'][1]:+.3f})")
  result = {**run, "split": a.split, "draws": DRAWS, "pairs": pairs, "wall_s": round(time.perf_counter() - t0, 2)}
  Path(a.out).parent.mkdir(parents=True, exist_ok=True)
  files.write_json(Path(a.out), result)
  return result


if __name__ == "__main__":
  main()
