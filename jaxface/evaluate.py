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
import json
import logging
import sys

from jaxface.inference import CHECKPOINTS, TTA, evaluation


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.evaluate", description=__doc__.split("\n\n")[1])
  p.add_argument("--workdir", required=True)
  p.add_argument("--data", help="UTKFace archive or folder (default: the workdir's config)")
  p.add_argument("--split", default="validation", choices=evaluation.SPLITS)
  p.add_argument("--checkpoint", default="best", choices=CHECKPOINTS)
  p.add_argument("--tta", default="none", choices=TTA)
  args = p.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr, force=True)
  logging.getLogger("absl").setLevel(logging.WARNING)
  try:
    result = evaluation.evaluate(args.workdir, args.split, args.checkpoint, args.tta, args.data)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(json.dumps(result, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
