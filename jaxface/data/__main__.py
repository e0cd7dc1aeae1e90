"""python -m jaxface.data --data PATH --dataset subset5000|full

Prepares the utk_face dataset (once; later calls reuse it) and prints one JSON
object: examples, gender and age-band counts per split, duplicate groups and
how they were handled, and the skipped files with reasons.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time

from jaxface import provenance
from jaxface.data import prepare, source
from jaxface.data.utk_face import DATASETS


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.data", description=__doc__.split("\n\n")[1])
  p.add_argument(
    "--data", help=f"UTKFace.tar.gz or the UTKFace/ folder (default: ${source.ENV_VAR}, then TFDS's manual folder)"
  )
  p.add_argument("--dataset", "--config", default="subset5000", choices=DATASETS, help="utk_face config")
  p.add_argument("--image-size", type=int, default=128, help="stored resolution, pixels square (default 128)")
  p.add_argument("--tfds-dir", help="TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  p.add_argument("--rebuild", action="store_true", help="build again even if prepared")
  args = p.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr, force=True)
  t0 = time.perf_counter()
  run = provenance.record(device=False)
  try:
    with contextlib.redirect_stdout(sys.stderr):  # TFDS prints progress; stdout is the JSON alone
      b = prepare.prepare(args.data, args.dataset, args.image_size, args.tfds_dir, rebuild=args.rebuild)
  except (source.DataNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps({**prepare.summary(b), "run": {**run, "wall_s": round(time.perf_counter() - t0, 2)}}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
