"""Manifests: any labelled face collection as one CSV or JSONL file, the general way in.

One row per image. Columns (CSV header names; JSONL keys):

- ``path`` (required): the image, relative to the manifest's folder. An
  absolute path, or one that leaves that folder (``..``, or a symbolic link
  that leads out of it), is refused.
- the age, one of:
  - ``age``: years (whole or not);
  - ``age_min`` and ``age_max``: a range, both ends inclusive (Adience's
    "(25, 32)" is 25 and 32);
  - ``age_mean`` and optionally ``age_std``: an apparent age (APPA-REAL);
  - all blank: unknown; the face then trains gender only.
- ``gender``: ``m``/``male``/``0`` or ``f``/``female``/``1`` (any case);
  blank or ``unknown``: unknown, left out of the gender loss and metrics.
  jaxface's one encoding is UTKFace's: **0 male, 1 female**. Each importer
  (``data.layouts``) maps its layout to it; IMDB-WIKI's ``1 = male`` among them.
- optional: ``subject`` (a person's id: no person is in two splits),
  ``split`` (``train``, ``validation`` or ``test``: honoured as given),
  ``box`` (``x y w h`` in the photo's pixels; JSONL: a list), ``race`` (UTKFace's
  0-4 or its names), ``group`` (any string, reported per value) and
  ``source`` (which collection a row comes from).

``read`` checks every row and raises ``ManifestError`` naming the file and the
row (line) of the first problem; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from PIL import Image

from jaxface import files
from jaxface.data import labels as labels_lib

SUFFIXES = (".csv", ".jsonl")
COLUMNS = (
  "path", "age", "age_min", "age_max", "age_mean", "age_std", "gender", "subject", "split", "box", "race", "group",
  "source",
)  # fmt: skip
SPLITS = ("train", "validation", "test")
UNKNOWN_AGE = -1.0
UNKNOWN_GENDER = -1
_GENDERS = {"m": 0, "male": 0, "0": 0, "f": 1, "female": 1, "1": 1, "": UNKNOWN_GENDER, "unknown": UNKNOWN_GENDER}
_RACES = {name: i for i, name in enumerate(labels_lib.RACES)} | {str(i): i for i in range(len(labels_lib.RACES))}


class ManifestError(ValueError):
  """A manifest that cannot be used as it is; the message names the file and the row."""


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
  """One checked manifest row, in jaxface's encoding."""

  path: str  # relative to the manifest's folder, with forward slashes
  age_min: float  # UNKNOWN_AGE when unknown; equal to age_max for an exact age
  age_max: float
  age_std: float = 0.0  # an apparent age's spread (years); 0: none given
  gender: int = UNKNOWN_GENDER  # 0 male, 1 female
  race: int = labels_lib.UNKNOWN_RACE
  subject: str = ""
  split: str = ""
  box: tuple[float, float, float, float] | None = None
  group: str = ""
  source: str = ""
  line: int = 0  # where in the manifest (CSV: the file's line; JSONL: its line)

  @property
  def age(self) -> float:
    """The age trained against by regression and reported by MAE: a range's midpoint."""
    return UNKNOWN_AGE if self.age_min < 0 else (self.age_min + self.age_max) / 2

  def labels(self) -> labels_lib.Labels:
    return labels_lib.Labels(
      age=self.age, gender=self.gender, race=self.race, age_min=self.age_min, age_max=self.age_max, age_std=self.age_std
    )


def is_manifest(path: str | os.PathLike | None) -> bool:
  return path is not None and Path(path).suffix.lower() in SUFFIXES and Path(path).expanduser().is_file()


def _number(v, what: str) -> float | None:
  if v is None or (isinstance(v, str) and not v.strip()):
    return None
  if isinstance(v, bool):  # JSON's true is not 1 year
    raise ValueError(f"{what} {json.dumps(v)} is not a number")
  try:
    x = float(v)
  except (TypeError, ValueError):
    raise ValueError(f"{what} {v!r} is not a number") from None
  if not math.isfinite(x):
    raise ValueError(f"{what} {v!r} is not a finite number")
  return x


def _age(rec: dict) -> tuple[float, float, float]:
  """(age_min, age_max, age_std) of a row's age columns."""
  age, lo, hi = (
    _number(rec.get("age"), "age"),
    _number(rec.get("age_min"), "age_min"),
    _number(rec.get("age_max"), "age_max"),
  )
  mean, std = _number(rec.get("age_mean"), "age_mean"), _number(rec.get("age_std"), "age_std")
  given = [
    name
    for name, v in (("age", age), ("age_min/age_max", lo if lo is not None else hi), ("age_mean", mean))
    if v is not None
  ]
  if len(given) > 1:
    raise ValueError(f"gives the age twice ({' and '.join(given)}); give one of them")
  if (lo is None) != (hi is None):
    raise ValueError("gives only one end of an age range; give both age_min and age_max")
  if std is not None and mean is None:
    raise ValueError("gives age_std without age_mean")
  if mean is not None:
    lo = hi = mean
  elif age is not None:
    lo = hi = age
  if lo is None:
    return UNKNOWN_AGE, UNKNOWN_AGE, 0.0
  for name, v in (("age", lo), ("age", hi)):
    if not 0 <= v <= labels_lib.MAX_AGE:
      raise ValueError(f"{name} {v:g} is outside 0-{labels_lib.MAX_AGE}")
  if lo > hi:
    raise ValueError(f"age_min {lo:g} is above age_max {hi:g}")
  if std is not None and std < 0:
    raise ValueError(f"age_std {std:g} is negative")
  return lo, hi, std or 0.0


def _box(v) -> tuple[float, float, float, float] | None:
  if v is None or (isinstance(v, str) and not v.strip()):
    return None
  parts = v.replace(",", " ").split() if isinstance(v, str) else list(v)
  try:
    box = tuple(float(p) for p in parts)
  except (TypeError, ValueError):
    raise ValueError(f"box {v!r} is not four numbers x y w h") from None
  if len(box) != 4 or not all(map(math.isfinite, box)) or box[2] <= 0 or box[3] <= 0:
    raise ValueError(f"box {v!r} is not x y w h with a positive width and height")
  return box


def _box_outside(image: Path, box: tuple[float, float, float, float]) -> str | None:
  """Why ``box`` does not fit its photo (over half of it outside), from the photo's header; None when it fits or
  the photo cannot be opened (the build names a missing or unreadable photo)."""
  try:
    with Image.open(image) as img:
      w, h = img.size
  except (OSError, ValueError, Image.DecompressionBombError):
    return None
  x, y, bw, bh = box
  inside = max(0.0, min(x + bw, w) - max(x, 0.0)) * max(0.0, min(y + bh, h) - max(y, 0.0))
  if inside < 0.5 * bw * bh:
    return f"box {_cell(box)} lies mostly outside its {w}x{h} photo {image.name}"
  return None


def _path(v, root: Path) -> str:
  if not isinstance(v, str) or not v.strip():
    raise ValueError("has no path")
  p = Path(v.strip())
  outside = f"path {v!r} is not inside the manifest's folder {root}; give it relative to that folder"
  if p.is_absolute() or ".." in p.parts:
    raise ValueError(outside)
  real, top = (root / p).resolve(), root.resolve()
  if top not in real.parents:  # a symlink on the way leads out of the folder
    raise ValueError(f"{outside} (a symbolic link leads to {real})")
  return p.as_posix()


def parse_row(rec: dict, root: Path) -> Row:
  """One row (a dict of column -> value) as a Row; ValueError says what is wrong."""
  unknown = sorted(set(rec) - set(COLUMNS))
  if unknown:
    raise ValueError(f"has unknown columns {unknown}; the columns are {list(COLUMNS)}")
  age_min, age_max, age_std = _age(rec)
  gender_v = str(rec.get("gender") if rec.get("gender") is not None else "").strip().lower()
  if gender_v not in _GENDERS:
    raise ValueError(f"gender {rec.get('gender')!r} is not m/f, male/female, 0/1 or blank")
  race_v = str(rec.get("race") if rec.get("race") is not None else "").strip().lower()
  if race_v and race_v not in _RACES:
    raise ValueError(f"race {rec.get('race')!r} is not one of {list(labels_lib.RACES)} or 0-4")
  split = str(rec.get("split") or "").strip().lower()
  if split and split not in SPLITS:
    raise ValueError(f"split {rec.get('split')!r} is not one of {list(SPLITS)}")
  return Row(
    path=_path(rec.get("path"), root), age_min=age_min, age_max=age_max, age_std=age_std,
    gender=_GENDERS[gender_v], race=_RACES.get(race_v, labels_lib.UNKNOWN_RACE),
    subject=str(rec.get("subject") or "").strip(), split=split, box=_box(rec.get("box")),
    group=str(rec.get("group") or "").strip(), source=str(rec.get("source") or "").strip(),
  )  # fmt: skip


def records(path: Path) -> Iterator[tuple[int, dict]]:
  """(line, dict) per row of a CSV (a header first) or a JSONL file."""
  if path.suffix.lower() == ".jsonl":
    with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark (Excel's "UTF-8") is not a column
      for i, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          rec = json.loads(line)
        except json.JSONDecodeError as e:
          raise ManifestError(f"{path}, line {i}: not a JSON object ({e})") from None
        if not isinstance(rec, dict):
          raise ManifestError(f"{path}, line {i}: not a JSON object")
        yield i, rec
    return
  with open(path, encoding="utf-8-sig", newline="") as f:
    reader = csv.DictReader(f)
    if not reader.fieldnames:
      raise ManifestError(
        f"{path}: empty; a manifest starts with a header row naming its columns ({', '.join(COLUMNS)})"
      )
    twice = sorted({c for c in reader.fieldnames if reader.fieldnames.count(c) > 1})
    if twice:
      raise ManifestError(f"{path}, line 1: the header names {twice} more than once")
    if "path" not in reader.fieldnames:
      raise ManifestError(f"{path}, line 1: the header has no 'path' column (it has {reader.fieldnames})")
    for rec in reader:
      if None in rec:
        raise ManifestError(f"{path}, line {reader.line_num}: more fields than the header names")
      yield reader.line_num, {k: v for k, v in rec.items()}


def read(path: str | os.PathLike) -> list[Row]:
  """Every row of a manifest, checked; ManifestError at the first bad row or a path given twice."""
  path = Path(path).expanduser()
  if not path.is_file():
    raise ManifestError(f"{path}: no such manifest")
  if path.suffix.lower() not in SUFFIXES:
    raise ManifestError(f"{path}: a manifest is a .csv or .jsonl file")
  root, rows, seen = path.parent, [], {}
  try:
    for line, rec in records(path):
      try:
        row = parse_row(rec, root)
      except ValueError as e:
        raise ManifestError(f"{path}, line {line}: {e}") from None
      if row.path in seen:
        raise ManifestError(
          f"{path}, line {line}: path {row.path!r} is also on line {seen[row.path]}; give each image once"
        )
      seen[row.path] = line
      if row.box is not None and (why := _box_outside(root / row.path, row.box)):
        raise ManifestError(f"{path}, line {line}: {why}")
      rows.append(dataclasses.replace(row, line=line))
  except UnicodeDecodeError as e:
    raise ManifestError(f"{path}: not UTF-8 text ({e})") from None
  if not rows:
    raise ManifestError(f"{path}: no rows")
  return rows


def as_dict(row: Row) -> dict:
  """A row as ``write`` takes it, in the manifest's own forms (an exact age as ``age``, a spread as ``age_mean``)."""
  d = {"path": row.path, "gender": {0: "m", 1: "f"}.get(row.gender, "")}
  if row.age_std > 0:
    d |= {"age_mean": row.age_min, "age_std": row.age_std}
  elif row.age_min >= 0 and row.age_min == row.age_max:
    d["age"] = row.age_min
  elif row.age_min >= 0:
    d |= {"age_min": row.age_min, "age_max": row.age_max}
  if row.race != labels_lib.UNKNOWN_RACE:
    d["race"] = row.race
  return d | {k: getattr(row, k) for k in ("subject", "split", "box", "group", "source") if getattr(row, k)}


def combine(paths: list[str | os.PathLike], out: str | os.PathLike) -> dict[str, int]:
  """Writes the rows of several manifests as one, ``out``: paths made relative to out's folder, and each row's
  ``source`` kept, or else its manifest's name (its stem). Returns the rows per source."""
  out = Path(out).expanduser().resolve()
  rows, counts = [], {}
  for p in paths:
    p = Path(p).expanduser().resolve()
    for row in read(p):
      rel = os.path.relpath(p.parent / row.path, out.parent)
      if rel.startswith(".."):
        raise ManifestError(
          f"{p}, line {row.line}: {row.path} is outside {out.parent}; write the combined manifest higher up"
        )
      d = as_dict(row) | {"path": Path(rel).as_posix(), "source": row.source or p.stem}
      counts[d["source"]] = counts.get(d["source"], 0) + 1
      rows.append(d)
  write(out, rows)
  read(out)  # a path listed by two manifests is refused here, naming both lines
  return counts


def _cell(v) -> str:
  if v is None:
    return ""
  if isinstance(v, float):
    return f"{v:g}"
  if isinstance(v, tuple | list):
    return " ".join(_cell(x) for x in v)
  return str(v)


def write(path: str | os.PathLike, rows: Iterable[dict]) -> int:
  """Writes rows (dicts of COLUMNS) as a CSV or JSONL manifest; returns how many. Only the columns used are written."""
  path = Path(path)
  rows = list(rows)
  used = [c for c in COLUMNS if any(r.get(c) not in (None, "") for r in rows)]
  path.parent.mkdir(parents=True, exist_ok=True)
  f = io.StringIO(newline="")
  if path.suffix.lower() == ".jsonl":
    for r in rows:
      f.write(json.dumps({c: r[c] for c in used if r.get(c) not in (None, "")}) + "\n")
  else:
    w = csv.writer(f)
    w.writerow(used)
    for r in rows:
      w.writerow([_cell(r.get(c)) for c in used])
  files.write_text(path, f.getvalue())
  return len(rows)
