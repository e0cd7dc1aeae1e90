"""A port's arrays into a backbone, strictly; a converted backbone's folder, written and read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from flax import nnx

from jaxface.fetch import WeightsError
from jaxface.ports import tensor_files, torchvision_weights


def load_backbone(backbone: nnx.Module, flat: dict[tuple, np.ndarray], source: str = "weights") -> None:
  """Sets every parameter and batch statistic of ``backbone``; strict on keys and shapes."""
  state = nnx.state(backbone)
  targets = dict(nnx.to_flat_state(state))
  missing = sorted(".".join(map(str, k)) for k in targets.keys() - flat.keys())
  extra = sorted(".".join(map(str, k)) for k in flat.keys() - targets.keys())
  bad = [
    f"{'.'.join(map(str, k))}: {flat[k].shape} vs {targets[k].shape}"
    for k in targets.keys() & flat.keys()
    if flat[k].shape != targets[k].shape
  ]
  if missing or extra or bad:
    raise WeightsError(
      f"{source} does not fit the {type(backbone).__name__} backbone: "
      f"{len(missing)} missing {missing[:5]}, {len(extra)} unexpected {extra[:5]}, {len(bad)} of other shape {bad[:5]}"
    )
  for k, var in targets.items():
    var.set_value(np.asarray(flat[k], var.get_value().dtype))
  nnx.update(backbone, state)


def save_converted(out_dir: str | os.PathLike, arch: str, flat: dict[tuple, np.ndarray], source: str) -> Path:
  """Writes DIR/backbone.safetensors (Flax layout, keys are NNX paths) and DIR/convert.json."""
  out = Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  tensor_files.write_safetensors(
    out / "backbone.safetensors", {"/".join(map(str, k)): v for k, v in flat.items()}, {"arch": arch}
  )
  (out / "convert.json").write_text(json.dumps({"arch": arch, "source": source, "tensors": len(flat)}, indent=2) + "\n")
  return out


def read_pretrained(path: str | os.PathLike) -> dict[tuple, np.ndarray]:
  """Backbone arrays from a converted DIR (or its backbone.safetensors), or a torchvision file."""
  path = Path(path).expanduser()
  if path.is_dir():
    path = path / "backbone.safetensors"
  tensors = tensor_files.read_torch_file(path)
  if any("/" in k for k in tensors):  # converted by jaxface.convert: Flax layout already
    return {tuple(int(p) if p.isdigit() else p for p in k.split("/")): v for k, v in tensors.items()}
  return torchvision_weights.torch_to_flat(tensors)
