"""A whole split as numpy arrays, read once: for device-resident training.

Reading a prepared split parses one TFDS example at a time (~200 µs each
under the GIL), so the decoded arrays are cached once next to the prepared
dataset, in ``<dataset dir>/arrays/<split>-<digest>/<field>.npy``, keyed by the
split's content digest (``splits.digest``): a rebuilt dataset with other images
never reads a stale cache. The cache is memory-mapped: a process reads only the
rows it takes (each host its share, in multi-host training).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxface import files
from jaxface.data import pipeline

FIELDS = pipeline.TRAIN_FIELDS  # what a training step needs: image, age, gender (and partial labels, when any)


def stack(source: Sequence[dict], fields: Sequence[str] = FIELDS, chunk: int = 512) -> dict[str, np.ndarray]:
  """Every example of ``source``, field by field, as one array each (in source order)."""
  getitems = getattr(source, "__getitems__", None) or (lambda keys: [source[i] for i in keys])
  out = {k: [] for k in fields}
  for start in range(0, len(source), chunk):
    for ex in getitems(list(range(start, min(start + chunk, len(source))))):
      for k in fields:
        out[k].append(ex[k])
  return {k: np.stack(v) for k, v in out.items()}


def cache_path(builder, split: str, fields: Sequence[str] = FIELDS) -> Path | None:
  digest = builder.info.metadata.get("splits", {}).get(split, {}).get("digest")
  more = "" if tuple(fields) == FIELDS else "-" + hashlib.sha256(",".join(fields).encode()).hexdigest()[:8]
  return Path(builder.data_dir) / "arrays" / f"{split}-{digest[:16]}{more}" if digest else None


def load(builder, split: str, fields: Sequence[str] = FIELDS) -> dict[str, np.ndarray]:
  """The split's arrays of ``fields`` (memory-mapped), from the cache or read once and cached."""
  path = cache_path(builder, split, fields)
  if path is not None and path.is_dir():
    return {k: np.load(path / f"{k}.npy", mmap_mode="r") for k in fields}
  t = time.perf_counter()
  arrays = stack(builder.as_data_source(split), fields)
  n = len(next(iter(arrays.values())))
  logging.info("Read %d %s examples into arrays in %.1fs", n, split, time.perf_counter() - t)
  if path is not None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name: a PID, reused in a container after a killed run, would collide with its leftover.
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
      for k, v in arrays.items():
        with open(tmp / f"{k}.npy", "wb") as f:
          np.save(f, v)
          os.fsync(f.fileno())
      os.replace(tmp, path)  # atomic: a killed run leaves no half-written cache
      files.sync_dir(path.parent)
    except OSError:  # another process cached it first, or the write failed: nothing half-written is left
      shutil.rmtree(tmp, ignore_errors=True)
      if not path.is_dir():
        raise
  return arrays
