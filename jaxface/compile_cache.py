"""XLA's persistent compilation cache for jaxface's inference verbs (predict, bulk, serve).

A run compiles the detector and the model once per input shape, which on a 2-core CPU takes longer than labelling
a few dozen photos. With the cache, later runs, and the other processes of a bulk run, load those programs instead.
It lives in $JAXFACE_CACHE/xla/<key>, keyed by jaxlib's version and this CPU's flags: compiled CPU code is
host-specific, and a cache on a shared filesystem must not hand one CPU's code to another. Your own
JAX_COMPILATION_CACHE_DIR wins; JAXFACE_COMPILE_CACHE=0 turns it off. No JAX import until ``enable``.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

from jaxface import files


def directory() -> Path:
  try:
    flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
  except (OSError, StopIteration):
    flags = platform.processor()
  try:
    from importlib.metadata import version

    jaxlib = version("jaxlib")
  except Exception:  # noqa: BLE001  (no metadata: the key still separates hosts)
    jaxlib = "?"
  key = hashlib.sha256(f"{platform.machine()} {flags} jaxlib {jaxlib}".encode()).hexdigest()[:12]
  return files.cache() / "xla" / key


def enable() -> Path | None:
  """Turns the cache on in this process (before its first compile); the folder, or None when it stays off."""
  import jax

  if os.environ.get("JAXFACE_COMPILE_CACHE") == "0" or jax.config.jax_compilation_cache_dir:
    return None
  d = directory()
  jax.config.update("jax_compilation_cache_dir", str(d))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the detector's small shapes add up
  return d
