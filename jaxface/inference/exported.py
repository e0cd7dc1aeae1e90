"""A model exported by ``jaxface.export``, loaded with JAX alone (no jaxface model code is imported)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jax
import numpy as np

from jaxface import xla_options

FORMAT = 1
FORWARD, META = "forward.jaxexport", "meta.json"


class ExportedModel:
  """uint8 face crops (B, size, size, 3) -> {'age', 'p_female'}, as ``InferenceModel`` gives them."""

  def __init__(self, path: str | Path):
    path = Path(path)
    try:
      with zipfile.ZipFile(path) as z:
        meta, blob = json.loads(z.read(META)), z.read(FORWARD)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
      raise ValueError(
        f"{path} is not a jaxface export ({type(e).__name__}: {e}); make one with python -m jaxface.export"
      ) from None
    if meta.get("format") != FORMAT:
      raise ValueError(f"{path} has export format {meta.get('format')!r}; this jaxface reads format {FORMAT}")
    self.path, self.meta, self.image_size = path, meta, int(meta["image_size"])
    # The same XLA options as the in-process model (on CPU: jaxface's convolution path), so both agree on any host.
    options = xla_options.compiler_options(jax.devices()[0].platform)
    self._fn = jax.jit(jax.export.deserialize(bytearray(blob)).call, compiler_options=options)

  def __call__(self, images: np.ndarray) -> dict[str, jax.Array]:
    return self._fn(images)
