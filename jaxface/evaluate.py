"""``python -m jaxface.evaluate --workdir DIR [--split validation|test|all] [--checkpoint best|last] [--calibrate]``

Evaluates a trained workdir: needs nothing but the workdir (architecture and
preprocessing come from its config.json) and the data. Writes and prints
DIR/eval_<split>.json (n, age MAE/RMSE, CS(5), gender accuracy; overall and per
age band, race and gender) and DIR/predictions_<split>.csv.
``--split all`` evaluates every usable image of the given archive, folder or
manifest (any labelled collection: cross-dataset evaluation is one command),
reporting per source and group where the manifest names them. ``--calibrate`` (on validation) first stores the
age interval's calibration in DIR/calibration.json; every evaluation of a
calibrated workdir reports the interval's coverage and width.
"""

from __future__ import annotations

import argparse
import json
import sys

from jaxface import cli
from jaxface.data.collection import CROPS
from jaxface.inference import CHECKPOINTS, TTA, calibration, evaluation


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.evaluate", description=__doc__.split("\n\n")[1])
  p.add_argument("--workdir", required=True)
  p.add_argument("--data", help="UTKFace archive or folder, or a manifest .csv/.jsonl (default: the workdir's config)")
  p.add_argument("--crop", choices=CROPS, help="a manifest's crop policy (default: the workdir's config)")
  p.add_argument("--split", default="validation", choices=evaluation.SPLITS)
  p.add_argument("--checkpoint", default="best", choices=CHECKPOINTS)
  p.add_argument("--tta", default="none", choices=TTA)
  p.add_argument("--calibrate", action="store_true", help="calibrate the age interval on this split (validation)")
  p.add_argument(
    "--coverage", type=float, default=calibration.DEFAULT_COVERAGE, help="the interval's coverage, with --calibrate"
  )
  args = p.parse_args(argv)
  cli.setup_logging()
  try:
    result = evaluation.evaluate(
      args.workdir, args.split, args.checkpoint, args.tta, args.data,
      calibrate=args.calibrate, coverage=args.coverage, crop=args.crop,
    )  # fmt: skip
  except (FileNotFoundError, ValueError) as e:
    return cli.error(e)
  print(json.dumps(result, indent=2))
  if result.get("interval_note"):
    print(f"note: {result['interval_note']}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  cli.run(main)
