"""A model exported by ``jaxface.export``, loaded with JAX alone (no jaxface model code is imported)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jax
import numpy as np

from jaxface.xla import options as xla_options

FORMAT = 1
FORWARD, META = "forward.jaxexport", "meta.json"
# The most an entry may inflate to: a meta.json is a few KB, a forward pass its weights; a zip bomb is refused
# from the sizes in its directory, before anything is inflated (and the reads stop there whatever they say).
MAX_META_BYTES, MAX_FORWARD_BYTES = 2**20, 2**31


def _read(z: zipfile.ZipFile, name: str, limit: int) -> bytes:
  if z.getinfo(name).file_size > limit:
    raise ValueError(f"its {name} would inflate to {z.getinfo(name).file_size} bytes, over {limit}")
  with z.open(name) as f:
    data = f.read(limit + 1)
  if len(data) > limit:
    raise ValueError(f"its {name} inflates past {limit} bytes")
  return data


class ExportedModel:
  """uint8 face crops (B, size, size, 3) -> {'age', 'p_female'}, as ``InferenceModel`` gives them."""

  def __init__(self, path: str | Path):
    path = Path(path)
    try:
      with zipfile.ZipFile(path) as z:
        meta, blob = json.loads(_read(z, META, MAX_META_BYTES)), _read(z, FORWARD, MAX_FORWARD_BYTES)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
      raise ValueError(
        f"{path} is not a jaxface export ({type(e).__name__}: {e}); make one with python -m jaxface.export"
      ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
      got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
      raise ValueError(f"{path} has export format {got!r}; this jaxface reads format {FORMAT}")
    try:
      size = int(meta["image_size"])
    except (KeyError, TypeError, ValueError):
      raise ValueError(f"{path}: its meta.json has no image size; export the model again") from None
    self.path, self.meta, self.image_size = path, meta, size
    # The same XLA options as the in-process model (on CPU: jaxface's convolution path), so both agree on any host.
    options = xla_options.compiler_options(jax.devices()[0].platform)
    try:
      exp = jax.export.deserialize(bytearray(blob))
    except Exception as e:  # a damaged module raises whatever its parser meets first
      raise ValueError(f"{path}: its {FORWARD} cannot be read ({type(e).__name__}: {e}); export it again") from None
    shape = tuple(exp.in_avals[0].shape[1:]) if len(exp.in_avals) == 1 else None
    if shape != (size, size, 3):
      raise ValueError(f"{path}: its forward pass takes {shape}, not the ({size}, {size}, 3) its meta.json says")
    self._fn = jax.jit(exp.call, compiler_options=options)

  def __call__(self, images: np.ndarray) -> dict[str, jax.Array]:
    return self._fn(images)
