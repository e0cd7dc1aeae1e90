"""Writing result files so that a kill never leaves one half-written: write a temporary file, then rename."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  path = Path(path)
  tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: two writers never share one
  tmp.write_bytes(data)
  os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one


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
