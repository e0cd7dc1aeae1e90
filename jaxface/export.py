"""``python -m jaxface.export --workdir DIR --out FILE [--format jaxface|onnx] [--checkpoint best|last]``
``[--tta none|flip] [--weights float32|float16] [--with-detector]``

Serialises a trained model's evaluation-mode forward pass: with jax.export
(``--format jaxface``, the default: one file, weights inside, for cpu, cuda
and tpu, any batch size), or as ONNX (``--format onnx``: any batch size, for
onnxruntime and other runtimes; written only once onnxruntime gives JAX's
numbers). Load either with ``Predictor.from_export(FILE)``, ``python -m
jaxface.predict --model FILE`` or ``python -m jaxface.serve --model FILE``;
none of them imports jaxface's model code for it. ``--detector --format onnx``
writes the face detector's network instead of a workdir's model.
"""

from __future__ import annotations

import argparse
import sys

from jaxface import cli
from jaxface.faces.face import DetectorError
from jaxface.inference import CHECKPOINTS, TTA

FORMATS = ("jaxface", "onnx")


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.export", description=__doc__.split("\n\n")[1])
  p.add_argument("--workdir", help="a trained jaxface workdir")
  p.add_argument("--out", required=True, help="the file to write (.jaxface or .onnx, say)")
  p.add_argument("--format", default="jaxface", choices=FORMATS)
  p.add_argument("--detector", action="store_true", help="with --format onnx: the face detector's network")
  p.add_argument("--checkpoint", default="best", choices=CHECKPOINTS)
  p.add_argument("--tta", default="none", choices=TTA, help="flip: average each face with its mirror")
  p.add_argument(
    "--weights", default="float32", choices=("float32", "float16"),
    help="--format jaxface: how the weights are stored (float16: half the file; computed in float32)",
  )  # fmt: skip
  p.add_argument(
    "--with-detector", action="store_true",
    help="--format jaxface: carry the face detector's pinned .tflite too, so the file labels photos offline",
  )  # fmt: skip
  p.add_argument("--note", help="--format jaxface: a line every user of the file is shown (its terms of use, say)")
  args = p.parse_args(argv)
  if args.detector != (args.workdir is None) or (args.detector and args.format != "onnx"):
    p.error("give --workdir, or --detector with --format onnx")
  from jaxface.inference import export

  checked = ""
  try:
    if args.detector:
      out, worst = export.export_detector_onnx(args.out)
    elif args.format == "onnx":
      out, worst = export.export_onnx(args.workdir, args.out, args.checkpoint, args.tta)
    else:
      out = export.export(
        args.workdir, args.out, args.checkpoint, args.tta, args.weights, args.with_detector, args.note
      )
      worst = None
    if worst is not None:
      checked = "; onnxruntime = JAX to " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
  except (FileNotFoundError, ValueError, DetectorError) as e:  # jaxpr_onnx.Unsupported (an op with no exact export)
    return cli.error(e)
  print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB{checked})", file=sys.stderr)
  return 0


if __name__ == "__main__":
  cli.run(main)
