"""python -m jaxface.convert --arch resnet50|mobilenet_v2 --source FILE|torchvision --out DIR

Turns a torchvision state dict (.safetensors with numpy alone; .pth where torch
is installed) into the Flax backbone's parameters and batch statistics,
checked key for key and shape for shape against the model, and writes
DIR/backbone.safetensors (+ convert.json). Train with ``--pretrained DIR``.
"""

from __future__ import annotations

import argparse
import sys

from flax import nnx

from jaxface import weights
from jaxface.models import BACKBONES


def convert(arch: str, source: str, out: str) -> dict:
  path = weights.download_torchvision(arch) if source == "torchvision" else source
  flat = weights.torch_to_flat(weights.read_torch_file(path))
  backbone = BACKBONES[arch](rngs=nnx.Rngs(0))
  weights.load_backbone(backbone, flat, source=str(path))  # the strict check
  weights.save_converted(out, arch, flat, str(path))
  return {"arch": arch, "source": str(path), "out": out, "tensors": len(flat)}


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.convert", description=__doc__.split("\n\n")[1])
  p.add_argument("--arch", required=True, choices=sorted(BACKBONES))
  p.add_argument(
    "--source", required=True, help="a .safetensors or .pth file, or 'torchvision' to download the official one"
  )
  p.add_argument("--out", required=True, help="output folder")
  args = p.parse_args(argv)
  try:
    info = convert(args.arch, args.source, args.out)
  except weights.WeightsError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"converted {info['tensors']} tensors of {info['source']} -> {info['out']}/backbone.safetensors")
  return 0


if __name__ == "__main__":
  sys.exit(main())
