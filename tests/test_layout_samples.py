"""Each layout importer against a small sample of its dataset's format as the dataset (or its public readers)
describe it, cited beside each: file names, folders and CSV headers taken from those descriptions, not from the
importers' own reading. The rows' values are illustrative (the datasets themselves are not fetched: their terms
forbid it, and the project's held-back checks depend on it); what they test is where each label is read from.

IMDB-WIKI (.mat) and MORPH (a licensed CSV) have no public sample here: tests/test_manifest.py covers them."""

import numpy as np
import pytest
from PIL import Image

from jaxface.data import layouts, manifest


def _jpeg(path, size=(40, 48)):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _csv(path, header: str, rows: list[str]):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join([header, *rows]) + "\n")


def _imported(layout: str, root, tmp_path, **kw) -> list[tuple]:
  out = tmp_path / f"{layout}.csv"
  layouts.import_layout(layout, root, out, **kw)
  return sorted((r.path, r.age, r.gender, r.subject, r.split) for r in manifest.read(out))


def test_utkface_as_its_page_names_the_files(tmp_path):
  """https://susanqq.github.io/UTKFace/: "[age]_[gender]_[race]_[date&time].jpg", gender 0 male 1 female, race 0-4;
  the aligned and cropped faces add ``.chip.jpg``."""
  for name in ("1_0_2_20161219140623097.jpg.chip.jpg", "26_1_0_20170116171048641.jpg.chip.jpg"):
    _jpeg(tmp_path / "UTKFace" / name)
  assert _imported("utkface", tmp_path / "UTKFace", tmp_path) == [
    ("UTKFace/1_0_2_20161219140623097.jpg.chip.jpg", 1, 0, "", ""),
    ("UTKFace/26_1_0_20170116171048641.jpg.chip.jpg", 26, 1, "", ""),
  ]


def test_afad_as_its_tarball_lays_it_out(tmp_path):
  """github.com/afad-dataset/tarball (and the readers that walk it): AFAD-Full/<age>/<111|112>/<id>-<n>.jpg, 111 male,
  112 female, with AFAD-Full.txt beside the age folders."""
  for rel in ("15/111/292943-1.jpg", "15/112/671487-0.jpg", "40/111/113722-0.jpg"):
    _jpeg(tmp_path / "AFAD-Full" / rel)
  (tmp_path / "AFAD-Full" / "AFAD-Full.txt").write_text("./AFAD-Full/15/111/292943-1.jpg\n")
  assert _imported("afad", tmp_path / "AFAD-Full", tmp_path) == [
    ("AFAD-Full/15/111/292943-1.jpg", 15, 0, "", ""),
    ("AFAD-Full/15/112/671487-0.jpg", 15, 1, "", ""),
    ("AFAD-Full/40/111/113722-0.jpg", 40, 0, "", ""),
  ]


def test_agedb_as_its_file_names_carry_the_labels(tmp_path):
  """AgeDB (Moschoglou et al., CVPRW 2017) has no label file: each name is number_name_age_gender.jpg, e.g.
  0_MariaCallas_35_f.jpg, 10000_GlennClose_62_f.jpg (as its public readers list it)."""
  for name in ("0_MariaCallas_35_f.jpg", "1_MariaCallas_40_f.jpg", "10000_GlennClose_62_f.jpg"):
    _jpeg(tmp_path / "AgeDB" / name)
  assert _imported("agedb", tmp_path / "AgeDB", tmp_path) == [
    ("AgeDB/0_MariaCallas_35_f.jpg", 35, 1, "MariaCallas", ""),
    ("AgeDB/10000_GlennClose_62_f.jpg", 62, 1, "GlennClose", ""),
    ("AgeDB/1_MariaCallas_40_f.jpg", 40, 1, "MariaCallas", ""),
  ]


@pytest.mark.parametrize("age", ["real", "apparent"])
def test_appa_real_as_its_readme_describes_it(tmp_path, age):
  """APPA-REAL's README (ChaLearn LAP, dataset 26): train/, valid/ and test/ folders; "for each image X.jpg ... a
  corresponding X.jpg_face.jpg"; per-image summaries in gt_avg_{train,valid,test}.csv "showing the number of
  ratings, average apparent age, standard deviation of apparent age and the real age", in that order (the header
  file_name,num_ratings,apparent_age_avg,apparent_age_std,real_age, as its public readers index it)."""
  root = tmp_path / "appa-real-release"
  header = "file_name,num_ratings,apparent_age_avg,apparent_age_std,real_age"
  _csv(root / "gt_avg_train.csv", header, ["000000.jpg,36,5.0,1.146,4", "000001.jpg,63,20.33,3.2,18"])
  _csv(root / "gt_avg_valid.csv", header, ["004113.jpg,38,35.5,4.7,37"])
  for rel in ("train/000000.jpg_face.jpg", "train/000001.jpg_face.jpg", "valid/004113.jpg_face.jpg"):
    _jpeg(root / rel)
  if age == "apparent":  # the raters' mean and spread, read by the importer function itself
    got = sorted((r["path"].name, float(r["age_mean"]), float(r["age_std"])) for r in layouts.appa_real(root, age))
    assert got == [("000000.jpg_face.jpg", 5.0, 1.146), ("000001.jpg_face.jpg", 20.33, 3.2),
                   ("004113.jpg_face.jpg", 35.5, 4.7)]  # fmt: skip
    return
  assert _imported("appa_real", root, tmp_path) == [
    ("appa-real-release/train/000000.jpg_face.jpg", 4, -1, "", "train"),
    ("appa-real-release/train/000001.jpg_face.jpg", 18, -1, "", "train"),
    ("appa-real-release/valid/004113.jpg_face.jpg", 37, -1, "", "validation"),
  ]  # no allcategories_*.csv: gender unknown


def test_imdb_clean_as_its_repository_makes_it(tmp_path):
  """github.com/yiminglin-ai/imdb-clean: csvs/imdb_{train,valid,test}_new.csv (boxes in the IMDB-WIKI photos under
  data/imdb/) and imdb_*_new_1024.csv (boxes in the crops its script writes to data/imdb-clean-1024/); columns
  filename, age, gender (M/F), x_min, y_min, x_max, y_max; file names as IMDB-WIKI's, <nn>/<nm id>_rm..._<dob>_<year>.jpg."""
  header = "filename,age,gender,x_min,y_min,x_max,y_max"
  name = "01/nm0000001_rm124825600_1899-5-10_1968.jpg"
  _csv(tmp_path / "csvs" / "imdb_train_new_1024.csv", header, [f"{name},69,M,341,335,681,675"])
  _csv(tmp_path / "csvs" / "imdb_train_new.csv", header, [f"{name},69,M,1072,161,1214,303"])
  _jpeg(tmp_path / "data" / "imdb-clean-1024" / name, (1024, 1024))
  _jpeg(tmp_path / "data" / "imdb" / name, (1300, 500))
  out = tmp_path / "clean.csv"
  layouts.import_layout("imdb_clean", tmp_path, out)
  (row,) = manifest.read(out)
  assert (row.path, row.age, row.gender, row.subject, row.split, row.box) == (
    f"data/imdb-clean-1024/{name}",
    69,
    0,
    "nm0000001",
    "train",
    (341, 335, 340, 340),
  )  # the crops' CSV with the crops, never the photos' boxes on the crops
