"""What to label: folders, globs and manifests of paths, as (file, path) items, and the inputs that name no photo."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from jaxface import faces
from jaxface.data import manifest

GLOB = set("*?[")
PATH_LISTS = (".txt", *manifest.SUFFIXES)  # one path a line; or a CSV/JSONL manifest's 'path' column


def _listed(path: Path) -> list[Path]:
  """The photos a path list names; relative paths are relative to the list's folder."""
  if path.suffix.lower() == ".txt":
    lines = path.read_text(encoding="utf-8").splitlines()
    names = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
  else:
    names = []
    for line, rec in manifest.records(path):
      if not isinstance(rec.get("path"), str) or not rec["path"].strip():
        raise manifest.ManifestError(f"{path}, line {line}: has no path")
      names.append(rec["path"].strip())
  if not names:
    raise manifest.ManifestError(f"{path}: lists no photos")
  return [p if p.is_absolute() else path.parent / p for p in map(Path, names)]


def printable(name: str) -> str:
  """A file name as text Arrow and Parquet take: bytes that are not UTF-8 escaped (``\\udce9``, as ``predict``
  writes them), never an error."""
  return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _item(f: Path) -> dict:
  """One photo: ``file`` as the input named it (printable), ``path`` the bytes the worker opens (any name)."""
  return {"file": printable(str(f)), "path": os.fsencode(f.resolve()), "error": None}


def items(inputs: list[str]) -> list[dict]:
  """One item per photo: ``file`` (as predict names it), ``path`` (absolute, as bytes, for the workers) and ``error`` (None, or
  why an input yields no photo: a folder without images, a glob that matches none, a path that does not exist).

  A ``.txt``, ``.csv`` or ``.jsonl`` file is a list of paths; a missing photo it lists is an error row when its turn
  comes. ``manifest.ManifestError`` for a list that cannot be read."""
  out = []
  for item in inputs:  # (each item's "file" escaped and "path" as bytes below: see _item)
    p = Path(item).expanduser()
    if GLOB & set(item) and not p.exists():  # a path that exists is that path, brackets and all ("Holiday [2019]")
      matched = sorted(Path(m) for m in glob.glob(item, recursive=True))
      found, _ = faces.expand_inputs(f for f in matched if f.is_dir() or f.suffix.lower() in faces.IMAGE_SUFFIXES)
      out += [_item(f) for f in found]
      if not found:
        out.append({"file": printable(item), "path": None, "error": "the pattern matches no image"})
    elif p.is_file() and p.suffix.lower() in PATH_LISTS:
      out += [_item(f) for f in _listed(p)]
    else:
      files, problems = faces.expand_inputs([p])
      out += [_item(f) for f in files]
      out += [{"file": printable(r["file"]), "path": None, "error": r["error"]} for r in problems]
  return out
