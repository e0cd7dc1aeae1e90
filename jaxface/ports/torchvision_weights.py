"""torchvision weights -> Flax backbone parameters and batch statistics.

The backbones (``models/resnet.py``, ``models/mobilenet.py``) name their
modules as torchvision does, so a torch key maps to an NNX path by rule:
``layer1.0.conv1.weight`` -> ``layer1/0/conv1/kernel``. Kernels go from
OIHW to HWIO (depthwise (C,1,k,k) to (k,k,1,C) by the same transpose), linear
weights are transposed, ``running_mean/var`` become ``mean/var``. The
classifier (``fc`` / ``classifier``) and ``num_batches_tracked`` are left out;
everything else must match the backbone key for key and shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxface import fetch
from jaxface.fetch import WeightsError
from jaxface.files import cache

CLASSIFIER_PREFIXES = ("fc.", "classifier.")
# torchvision's ImageNet weights (IMAGENET1K_V1) and their full sha256 (the file name carries only its first 8 hex
# digits, 32 bits). mobilenet_v2: ../shared/weights/README.md; resnet50: the digest published beside that file by
# several projects that pin it.
TORCHVISION_URLS = {
  "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
  "mobilenet_v2": "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
}
TORCHVISION_SHA256 = {
  "resnet50": "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
  "mobilenet_v2": "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
}


def torch_to_flat(state_dict: dict[str, np.ndarray]) -> dict[tuple, np.ndarray]:
  """Backbone entries of a torch state dict, as NNX paths -> arrays in Flax layout."""
  out = {}
  for key, value in state_dict.items():
    if key.startswith(CLASSIFIER_PREFIXES) or key.endswith("num_batches_tracked"):
      continue
    *parents, leaf = (int(p) if p.isdigit() else p for p in key.split("."))
    value = np.asarray(value, np.float32)
    if leaf == "weight" and value.ndim == 4:
      leaf, value = "kernel", value.transpose(2, 3, 1, 0)
    elif leaf == "weight" and value.ndim == 2:
      leaf, value = "kernel", value.T
    elif leaf == "weight":
      leaf = "scale"
    else:
      leaf = {"bias": "bias", "running_mean": "mean", "running_var": "var"}.get(leaf)
      if leaf is None:
        raise WeightsError(f"unexpected torch entry {key!r}")
    out[(*parents, leaf)] = value
  return out


def download(arch: str) -> Path:
  """torchvision's official file for ``arch``, downloaded once to the cache and hash-checked."""
  url = TORCHVISION_URLS[arch]
  dest = cache() / url.rsplit("/", 1)[1]
  return fetch.download(
    url,
    TORCHVISION_SHA256[arch],
    dest,
    f"Fetch that file elsewhere and put it at {dest}, or pass --source /path/to/{dest.name}",
  )
