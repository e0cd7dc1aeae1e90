"""Writing result files so that a kill or a power cut never leaves one half-written: a temporary file, synced,
then renamed, and the rename synced."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  path = Path(path)
  # A unique name (not the PID, which a container reuses after a kill): two writers never share one.
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())  # the bytes are on disk before the name points at them
    os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
  except BaseException as e:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    if isinstance(e, OSError) and e.errno is not None and e.filename is None:  # a failed write names no file
      raise OSError(e.errno, e.strerror, str(path)) from e
    raise
  sync_dir(path.parent)


def sync_dir(path: str | os.PathLike) -> None:
  """Makes a rename or a new entry in ``path`` durable."""
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
  write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> None:
  write_text(path, json.dumps(obj, indent=indent) + "\n")


def read_json(path: str | os.PathLike, what: str):
  """The JSON in ``path``; a ValueError naming the file and ``what`` it should hold when it is not JSON."""
  try:
    return json.loads(Path(path).read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e}); it should hold {what}") from None


def cache() -> Path:
  """jaxface's cache folder: $JAXFACE_CACHE, else ~/.cache/jaxface (read at each call, so a test can move it)."""
  return Path(os.environ.get("JAXFACE_CACHE", "~/.cache/jaxface")).expanduser()
