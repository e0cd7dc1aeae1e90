"""python -m jaxface.export --workdir DIR --out FILE [--checkpoint best|last] [--tta none|flip]

Serialises a trained model's evaluation-mode forward pass with jax.export:
one file, weights inside, for cpu, cuda and tpu, any batch size. Load it with
``Predictor.from_export(FILE)``, ``python -m jaxface.predict --model FILE`` or
``python -m jaxface.serve --model FILE``; none of them imports jaxface's
model code for it.
"""

from __future__ import annotations

import argparse
import sys

from jaxface.inference import CHECKPOINTS, TTA


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.export", description=__doc__.split("\n\n")[1])
  p.add_argument("--workdir", required=True, help="a trained jaxface workdir")
  p.add_argument("--out", required=True, help="the file to write (.jaxface, say)")
  p.add_argument("--checkpoint", default="best", choices=CHECKPOINTS)
  p.add_argument("--tta", default="none", choices=TTA, help="flip: average each face with its mirror")
  args = p.parse_args(argv)
  from jaxface.inference import export

  try:
    out = export.export(args.workdir, args.out, args.checkpoint, args.tta)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB)", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
