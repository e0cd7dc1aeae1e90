"""Importers: the common face datasets' native layouts, written out as manifests (``data.manifest``).

Each importer reads a dataset as its authors distribute it and yields manifest
rows in jaxface's one encoding (0 male, 1 female; ages in years). jaxface
downloads no dataset: each one's licence asks its users to fetch it
themselves, and most forbid redistribution (``LICENCES``).

``python -m jaxface.data --layout NAME --data ROOT --write-manifest OUT.csv``
writes the manifest (paths relative to OUT's folder); ``train`` and
``evaluate`` then take ``--data OUT.csv``.
"""

from __future__ import annotations

import csv
import datetime
import math
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from jaxface.data import labels as labels_lib
from jaxface.data import manifest as manifest_lib
from jaxface.faces.photos import IMAGE_SUFFIXES

LICENCES = {
  "utkface": "UTKFace: non-commercial research only; cite Zhang, Song & Qi (CVPR 2017). https://susanqq.github.io/UTKFace/",
  "afad": "AFAD (Niu et al., CVPR 2016): for research; cite the paper. https://afad-dataset.github.io/",
  "agedb": "AgeDB (Moschoglou et al., CVPRW 2017): academic research only, by request to its authors, no redistribution.",
  "appa_real": "APPA-REAL (Agustsson et al., FG 2017, ChaLearn): research use; cite the paper. https://chalearnlap.cvc.uab.cat/dataset/26/description/",
  "imdb_wiki": "IMDB-WIKI (Rothe et al., IJCV 2018): academic research only. https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/",
  "imdb_clean": "IMDB-Clean (Lin et al., 2021): labels under its repository's terms; the images are IMDB-WIKI's (academic research only).",
  "morph": "MORPH (UNCW): licensed per user or institution (academic or commercial release); no redistribution.",
  "folder": "Your own photos: their terms are yours.",
}


class LayoutError(ValueError):
  """A folder that does not hold the layout asked for; the message names the file or folder."""


def _images(root: Path) -> Iterator[Path]:
  return (p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _found(rows: list[dict], root: Path, layout: str, expect: str) -> list[dict]:
  if not rows:
    raise LayoutError(f"{root}: no images in the {layout} layout ({expect})")
  return rows


def utkface(root: Path) -> list[dict]:
  """``[age]_[gender]_[race]_[date].jpg.chip.jpg`` anywhere under root (0 male, 1 female: jaxface's encoding)."""
  rows = []
  for p in _images(root):
    try:
      lab = labels_lib.parse_file_name(p.name)
    except labels_lib.LabelError:
      continue
    race = "" if lab.race == labels_lib.UNKNOWN_RACE else lab.race
    rows.append({"path": p, "age": lab.age, "gender": lab.gender, "race": race, "source": "utkface"})
  return _found(rows, root, "utkface", "25_0_1_<date>.jpg.chip.jpg")


_AFAD_GENDERS = {"111": "m", "112": "f"}


def afad(root: Path) -> list[dict]:
  """``<age>/<111|112>/*.jpg``: 111 male, 112 female."""
  rows = []
  for p in _images(root):
    parts = p.relative_to(root).parts
    if len(parts) >= 3 and parts[-3].isdigit() and parts[-2] in _AFAD_GENDERS:
      rows.append({"path": p, "age": int(parts[-3]), "gender": _AFAD_GENDERS[parts[-2]], "source": "afad"})
  return _found(rows, root, "afad", "<age>/<111|112>/*.jpg")


_AGEDB = re.compile(r"^(\d+)_(.+)_(\d+)_([mf])$", re.IGNORECASE)


def agedb(root: Path) -> list[dict]:
  """``<id>_<name>_<age>_<m|f>.jpg``; the name is the subject."""
  rows = []
  for p in _images(root):
    m = _AGEDB.match(p.stem)
    if m:
      rows.append(
        {"path": p, "age": int(m.group(3)), "gender": m.group(4).lower(), "subject": m.group(2), "source": "agedb"}
      )
  return _found(rows, root, "agedb", "<id>_<name>_<age>_<m|f>.jpg")


def _csv(path: Path) -> list[dict]:
  with open(path, encoding="utf-8", newline="") as f:
    return [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(f)]


# The file-name words of the datasets that ship their splits (APPA-REAL, IMDB-Clean), and jaxface's split names.
_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


def appa_real(root: Path, age: str = "real") -> list[dict]:
  """``gt_avg_<split>.csv`` (real_age, apparent_age_avg, apparent_age_std) and ``allcategories_<split>.csv``
  (gender male/female) beside the ``<split>/`` folders; the faces are ``<split>/<file>_face.jpg``.

  ``age``: ``real`` (the default) or ``apparent`` (the raters' mean and std). The dataset's own splits are kept.
  """
  if age not in ("real", "apparent"):
    raise ValueError(f"APPA-REAL age {age!r}: choose real or apparent")
  rows = []
  for name, split in _SPLITS.items():
    gt = root / f"gt_avg_{name}.csv"
    if not gt.is_file():
      continue
    cats = root / f"allcategories_{name}.csv"
    genders = {r["file"]: r.get("gender", "") for r in _csv(cats)} if cats.is_file() else {}
    for r in _csv(gt):
      face = root / name / f"{r['file_name']}_face.jpg"
      if not face.is_file():
        raise LayoutError(f"{gt}: {r['file_name']} has no face crop {face}")
      ages = (
        {"age": r["real_age"]}
        if age == "real"
        else {"age_mean": r["apparent_age_avg"], "age_std": r["apparent_age_std"]}
      )
      rows.append(
        {"path": face, **ages, "gender": genders.get(r["file_name"], ""), "split": split, "source": "appa_real"}
      )
  return _found(rows, root, "appa_real", "gt_avg_{train,valid,test}.csv and {train,valid,test}/*_face.jpg")


def _matlab_year(datenum: float) -> tuple[int, int]:
  """(year, month) of a MATLAB serial date number (days from year 0)."""
  d = datetime.date.fromordinal(max(int(datenum) - 366, 1))
  return d.year, d.month


def imdb_wiki(root: Path, min_face_score: float = 1.0) -> list[dict]:
  """``imdb.mat`` or ``wiki.mat`` (under root or root/<name>_crop/) and the crops beside it.

  Age: the photo's year minus the year of birth, less one when born after June
  (the photo is taken as of 1 July). Gender: **1 male, 0 female** there,
  mapped to jaxface's encoding; NaN is unknown. The usual filter: a face_score
  of at least ``min_face_score``, and no second face.
  """
  from scipy.io import loadmat

  mats = [
    p for name in ("imdb", "wiki") for p in (root / f"{name}.mat", root / f"{name}_crop" / f"{name}.mat") if p.is_file()
  ]
  if not mats:
    raise LayoutError(f"{root}: no imdb.mat or wiki.mat (nor in imdb_crop/ or wiki_crop/)")
  rows = []
  for mat in mats:
    name = mat.stem
    try:
      meta = loadmat(mat)[name][0, 0]
    except (KeyError, ValueError, OSError) as e:
      raise LayoutError(f"{mat}: not IMDB-WIKI's .mat ({type(e).__name__}: {e})") from None
    col = {k: meta[k][0] for k in ("dob", "photo_taken", "full_path", "gender", "face_score", "second_face_score")}
    for dob, taken, path, g, score, second in zip(*col.values(), strict=True):
      if not (score >= min_face_score) or not math.isnan(second):
        continue
      year, month = _matlab_year(dob)
      age = int(taken) - year - (1 if month > 6 else 0)
      if not 0 <= age <= labels_lib.MAX_AGE:
        continue
      gender = "" if math.isnan(g) else ("m" if g == 1 else "f")
      rel = str(path[0])
      rows.append({"path": mat.parent / rel, "age": age, "gender": gender, "subject": _person(rel), "source": name})
  return _found(rows, root, "imdb_wiki", "imdb.mat/wiki.mat with face_score >= the minimum and no second face")


def _person(path: str) -> str:
  """IMDB-WIKI names a crop ``<person id>_...``: nm0000001_rm124825600_1899-5-10_1968.jpg."""
  return Path(path).name.split("_")[0]


# IMDB-Clean ships two CSVs a split (github.com/yiminglin-ai/imdb-clean: README, scripts/create_imdb_clean_1024.py):
# imdb_<split>_new_1024.csv, whose boxes are in the 1024 px crops it makes (data/imdb-clean-1024/), and
# imdb_<split>_new.csv, whose boxes are in the original IMDB-WIKI photos (data/imdb/). Each is read with its own images.
_IMDB_CLEAN = (("imdb_{}_new_1024.csv", ("data", "imdb-clean-1024")), ("imdb_{}_new.csv", ("data", "imdb")))


def imdb_clean(root: Path) -> list[dict]:
  """IMDB-Clean's CSVs (filename, age, gender M/F, x_min, y_min, x_max, y_max) under root or root/csvs/, a split at a
  time: ``imdb_<split>_new_1024.csv`` with the images under root/data/imdb-clean-1024/ where it is there, else
  ``imdb_<split>_new.csv`` with the original photos under root/data/imdb/ (or root). Its splits are kept, and the
  box given."""
  rows = []
  for name, split in _SPLITS.items():
    for pattern, images_at in _IMDB_CLEAN:
      sheet = next(
        (s for s in (root / pattern.format(name), root / "csvs" / pattern.format(name)) if s.is_file()), None
      )
      if sheet is None:
        continue
      images = root.joinpath(*images_at) if root.joinpath(*images_at).is_dir() else root
      for r in _csv(sheet):
        x0, y0, x1, y1 = (float(r[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
        rows.append({
          "path": images / r["filename"], "age": r["age"], "gender": r["gender"], "box": (x0, y0, x1 - x0, y1 - y0),
          "subject": _person(r["filename"]), "split": split, "source": "imdb_clean",
        })  # fmt: skip
      break  # the split's 1024 px crops, or else its original photos: never both
  return _found(rows, root, "imdb_clean", "imdb_{train,valid,test}_new_1024.csv or imdb_{train,valid,test}_new.csv")


def morph(root: Path) -> list[dict]:
  """MORPH's CSV (the first ``*.csv`` under root with columns id_num, age, gender M/F and photo); the subject is
  id_num, and the photo path is relative to the CSV's folder."""
  for sheet in sorted(root.rglob("*.csv")):
    rows = _csv(sheet)
    if rows and {"id_num", "age", "gender", "photo"} <= set(rows[0]):
      return [
        {
          "path": sheet.parent / r["photo"],
          "age": r["age"],
          "gender": r["gender"],
          "subject": r["id_num"],
          "source": "morph",
        }
        for r in rows
      ]
  raise LayoutError(f"{root}: no MORPH CSV (a .csv with the columns id_num, age, gender, photo)")


def folder(root: Path) -> list[dict]:
  """``root/<age>/<gender>/*``: the age in years, the gender as the manifest takes it (m/f, male/female, 0/1)."""
  rows = []
  for p in _images(root):
    parts = p.relative_to(root).parts
    if len(parts) == 3:
      rows.append({"path": p, "age": parts[0], "gender": parts[1], "source": root.name})
  return _found(rows, root, "folder", "<age>/<gender>/<image>")


LAYOUTS: dict[str, Callable[[Path], list[dict]]] = {
  "utkface": utkface, "afad": afad, "agedb": agedb, "appa_real": appa_real, "imdb_wiki": imdb_wiki,
  "imdb_clean": imdb_clean, "morph": morph, "folder": folder,
}  # fmt: skip


def import_layout(layout: str, root: str | os.PathLike, out: str | os.PathLike) -> dict:
  """Writes ``layout`` under ``root`` as the manifest ``out`` (paths relative to out's folder), checked by reading it
  back. Returns counts."""
  if layout not in LAYOUTS:
    raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)}")
  root, out = Path(root).expanduser().resolve(), Path(out).expanduser().resolve()
  if not root.is_dir():
    raise LayoutError(f"{root}: no such folder")
  rows = LAYOUTS[layout](root)
  base = out.parent
  for r in rows:
    rel = os.path.relpath(r["path"], base)
    if rel.startswith(".."):
      raise LayoutError(f"{r['path']}: outside the manifest's folder {base}; write the manifest at or above {root}")
    r["path"] = Path(rel).as_posix()
  manifest_lib.write(out, rows)
  try:  # a manifest that fails its check is not left behind to be used
    checked = manifest_lib.read(out)
    missing = [r.path for r in checked if not (base / r.path).is_file()]
    if missing:
      raise LayoutError(f"{out}: {len(missing)} listed images do not exist, e.g. {missing[0]}")
  except (LayoutError, manifest_lib.ManifestError):
    out.unlink(missing_ok=True)
    raise
  return {"layout": layout, "root": str(root), "manifest": str(out), "rows": len(checked), "licence": LICENCES[layout]}
