"""XLA's persistent compilation cache for jaxface's inference verbs (predict, bulk, serve).

A run compiles the detector and the model once per input shape, which on a 2-core CPU takes longer than labelling
a few dozen photos. With the cache, later runs, and the other processes of a bulk run, load those programs instead.
It lives in $JAXFACE_XLA_CACHE (default ``~/.cache/jaxface/xla``: per user, never below a $JAXFACE_CACHE that may
be shared), in a folder keyed by jaxlib's version and this CPU's flags: compiled CPU code is host-specific, and a
cache must not hand one CPU's code to another. Whoever can write to it supplies native code that every predict,
bulk and serve process loads, so a folder that is not the user's own, or that group or others may write to, is
refused (the cache stays off, with a warning). Your own JAX_COMPILATION_CACHE_DIR wins; JAXFACE_COMPILE_CACHE=0
turns it off. No JAX import until ``enable``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import stat
from pathlib import Path


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
  return Path(os.environ.get("JAXFACE_XLA_CACHE", "~/.cache/jaxface/xla")).expanduser() / key


def unsafe(d: Path) -> str | None:
  """Why ``d`` (made, mode 700, when missing) cannot hold code this process will run; None when it can."""
  d.mkdir(mode=0o700, parents=True, exist_ok=True)
  for p in (d, d.parent):
    st = p.stat()
    if st.st_uid != os.getuid():
      return f"{p} belongs to another user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
      return f"{p} is writable by group or others (chmod go-w {p})"
  return None


def enable() -> Path | None:
  """Turns the cache on in this process (before its first compile); the folder, or None when it stays off."""
  import jax

  if os.environ.get("JAXFACE_COMPILE_CACHE") == "0" or jax.config.jax_compilation_cache_dir:
    return None
  d = directory()
  if (why := unsafe(d)) is not None:
    logging.warning("XLA's compilation cache stays off: %s; its compiled code would run in this process", why)
    return None
  jax.config.update("jax_compilation_cache_dir", str(d))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the detector's small shapes add up
  return d
