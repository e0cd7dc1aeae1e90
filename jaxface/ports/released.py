"""Every arch's published weights, defined once: which source each arch has, how it is read, and the cached copy.

``convert`` and ``--pretrained released`` both go through here, so an arch is
added in one place (beside its reader: ``ports.torchvision_weights``,
``ports.cydral``, ``ports.faceres`` or ``ports.insightface``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxface import files
from jaxface.ports import backbone, cydral, faceres, insightface, torchvision_weights

Flat = dict[tuple, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Source:
  read: Callable[[str | os.PathLike | None], Flat]  # the released network, heads included (None: fetch it)
  backbone: Callable[[Flat], Flat]  # without the released heads, keys as the arch's backbone has them
  origin: str  # what is fetched when no source is given
  heads_arch: str | None  # the arch of the network with its released heads (models.RELEASED); None: it has none
  image_size: int  # the released network's own input size


SOURCES = {
  "cydral": Source(
    lambda s: cydral.to_flat(cydral.graph_bytes(s)), cydral.backbone_only, cydral.WHEEL, "cydral_released", 64
  ),
  **{
    arch: Source(
      lambda s, r=release: faceres.to_flat(faceres.model_files(s, r)),
      faceres.backbone_only,
      release.package,
      f"{arch}_released",
      224,
    )
    for arch, release in faceres.RELEASES.items()
  },
  "mobilefacenet": Source(
    lambda s: insightface.to_flat(insightface.graph_bytes(s)), insightface.backbone_only, insightface.WHEEL, None, 112
  ),
}
WITH_HEADS = tuple(arch for arch, src in SOURCES.items() if src.heads_arch)  # convert --released takes these


def cached_backbone(arch: str) -> Path:
  """``arch``'s backbone, fetched (every digest checked) and converted once into $JAXFACE_CACHE/<arch>."""
  out = files.cache() / arch
  if not (out / "backbone.safetensors").exists():
    src = SOURCES[arch]
    backbone.save_converted(out, arch, src.backbone(src.read(None)), src.origin)
  return out


RELEASED_WEIGHTS = "released"  # --pretrained released: the arch's published weights, fetched (digest-checked) once


def weights(arch: str) -> Path:
  """The published weights of ``arch``'s backbone: downloaded and checked on first use, then cached (torchvision's
  file as it is; a face port's converted)."""
  if arch in torchvision_weights.TORCHVISION_URLS:
    return torchvision_weights.download(arch)
  return cached_backbone(arch)
