"""Your own faces: manifests, the importers of the common layouts, and building them as the utk_face builder does."""

import csv
import datetime
import json

import fake_utkface
import numpy as np
import pytest
from PIL import Image

from jaxface.data import layouts, manifest, prepare, splits


def _jpeg(path, seed=0, size=(40, 48)):
  path.parent.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
  return path


def _write_csv(path, header, rows):
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
  return path


# --- the manifest ----------------------------------------------------------


def test_rows_in_every_form_are_read_in_one_encoding(tmp_path):
  for i in range(6):
    _jpeg(tmp_path / "img" / f"{i}.jpg", i)
  m = _write_csv(
    tmp_path / "m.csv",
    ["path", "age", "age_min", "age_max", "age_mean", "age_std", "gender", "subject", "split", "box", "race"],
    [
      ["img/0.jpg", "25", "", "", "", "", "M", "ann", "", "", ""],
      ["img/1.jpg", "", "25", "32", "", "", "female", "bob", "test", "1 2 30 40", "asian"],
      ["img/2.jpg", "", "", "", "31.5", "4.2", "1", "", "", "", "3"],
      ["img/3.jpg", "", "", "", "", "", "", "", "", "", ""],
      ["img/4.jpg", "7", "", "", "", "", "0", "", "", "", ""],
      ["img/5.jpg", "80", "", "", "", "", "unknown", "", "", "", ""],
    ],
  )
  rows = manifest.read(m)
  got = [(r.age, r.age_min, r.age_max, r.age_std, r.gender, r.race, r.split, r.box, r.line) for r in rows]
  assert got == [
    (25, 25, 25, 0, 0, -1, "", None, 2),
    (28.5, 25, 32, 0, 1, 2, "test", (1, 2, 30, 40), 3),
    (31.5, 31.5, 31.5, 4.2, 1, 3, "", None, 4),
    (-1, -1, -1, 0, -1, -1, "", None, 5),
    (7, 7, 7, 0, 0, -1, "", None, 6),
    (80, 80, 80, 0, -1, -1, "", None, 7),
  ]
  j = tmp_path / "m.jsonl"
  j.write_text('{"path": "img/0.jpg", "age": 25, "gender": "m", "box": [1, 2, 3, 4]}\n\n{"path": "img/1.jpg"}\n')
  a, b = manifest.read(j)
  assert (a.age, a.gender, a.box, a.line, b.age, b.gender, b.line) == (25, 0, (1, 2, 3, 4), 1, -1, -1, 3)


@pytest.mark.parametrize(
  "header, row, says",
  [
    (["file", "age"], ["a.jpg", "3"], "line 1: the header has no 'path' column"),
    (["path", "age"], ["a.jpg", "130"], "line 2: age 130 is outside 0-116"),
    (["path", "age"], ["a.jpg", "x"], "line 2: age 'x' is not a number"),
    (["path", "age", "age_min", "age_max"], ["a.jpg", "3", "1", "5"], "line 2: gives the age twice"),
    (["path", "age_min", "age_max"], ["a.jpg", "9", "5"], "line 2: age_min 9 is above age_max 5"),
    (["path", "age_min"], ["a.jpg", "9"], "line 2: gives only one end of an age range"),
    (["path", "gender"], ["a.jpg", "x"], "line 2: gender 'x' is not m/f"),
    (["path", "age"], ["../a.jpg", "3"], "line 2: path '../a.jpg' is not inside the manifest's folder"),
    (["path", "age"], ["/etc/passwd", "3"], "line 2: path '/etc/passwd' is not inside the manifest's folder"),
    (["path", "split"], ["a.jpg", "dev"], "line 2: split 'dev' is not one of"),
    (["path", "box"], ["a.jpg", "1 2 3"], "line 2: box '1 2 3' is not x y w h"),
    (["path", "colour"], ["a.jpg", "red"], "line 2: has unknown columns ['colour']"),
    (["path", "age"], ["", "3"], "line 2: has no path"),
  ],
)
def test_a_bad_manifest_is_one_line_naming_the_file_and_row(tmp_path, header, row, says):
  m = _write_csv(tmp_path / "bad.csv", header, [row])
  with pytest.raises(manifest.ManifestError) as e:
    manifest.read(m)
  assert str(e.value).startswith(f"{m}, ") and says in str(e.value) and "\n" not in str(e.value)


def test_a_row_given_twice_and_a_missing_image_name_their_rows(tmp_path):
  _jpeg(tmp_path / "a.jpg")
  twice = _write_csv(tmp_path / "twice.csv", ["path", "age"], [["a.jpg", "3"], ["b.jpg", "4"], ["./a.jpg", "3"]])
  with pytest.raises(manifest.ManifestError, match=r"twice.csv, line 4: path 'a.jpg' is also on line 2"):
    manifest.read(twice)
  missing = _write_csv(tmp_path / "missing.csv", ["path", "age"], [["a.jpg", "3"], ["b.jpg", "4"]])
  with pytest.raises(manifest.ManifestError, match=r"missing.csv, line 3: b.jpg: no such file"):
    prepare.prepare(str(missing), "full", 16, tmp_path / "tfds", crop="as-is")
  for text, says in (("", "empty"), ("path,age\n", "no rows"), ('{"path": 3', "line 1: not a JSON object")):
    (tmp_path / "e.jsonl" if text.startswith("{") else tmp_path / "e.csv").write_text(text)
    with pytest.raises(manifest.ManifestError, match=says):
      manifest.read(tmp_path / "e.jsonl" if text.startswith("{") else tmp_path / "e.csv")


# --- the importers, each on its own layout and gender code ----------------------


def _rows(out):
  return sorted((r.path, r.age_min, r.age_max, r.gender, r.subject, r.split) for r in manifest.read(out))


def test_utkface_names(tmp_path):
  _jpeg(tmp_path / "d" / "25_0_1_20170101.jpg.chip.jpg")
  _jpeg(tmp_path / "d" / "3_1_20170101.jpg.chip.jpg")
  (tmp_path / "d" / "readme.txt").write_text("not an image")
  info = layouts.import_layout("utkface", tmp_path / "d", tmp_path / "m.csv")
  assert info["rows"] == 2 and "non-commercial" in info["licence"]
  assert _rows(tmp_path / "m.csv") == [
    ("d/25_0_1_20170101.jpg.chip.jpg", 25, 25, 0, "", ""),
    ("d/3_1_20170101.jpg.chip.jpg", 3, 3, 1, "", ""),
  ]


def test_afad_111_is_male_112_female(tmp_path):
  _jpeg(tmp_path / "AFAD-Full" / "15" / "111" / "a.jpg")
  _jpeg(tmp_path / "AFAD-Full" / "40" / "112" / "b.jpg")
  layouts.import_layout("afad", tmp_path / "AFAD-Full", tmp_path / "afad.csv")
  assert _rows(tmp_path / "afad.csv") == [
    ("AFAD-Full/15/111/a.jpg", 15, 15, 0, "", ""),
    ("AFAD-Full/40/112/b.jpg", 40, 40, 1, "", ""),
  ]


def test_agedb_names_and_subjects(tmp_path):
  _jpeg(tmp_path / "AgeDB" / "0_MariaCallas_35_f.jpg")
  _jpeg(tmp_path / "AgeDB" / "17_Some_One_61_m.jpg")
  layouts.import_layout("agedb", tmp_path / "AgeDB", tmp_path / "agedb.jsonl")
  assert _rows(tmp_path / "agedb.jsonl") == [
    ("AgeDB/0_MariaCallas_35_f.jpg", 35, 35, 1, "MariaCallas", ""),
    ("AgeDB/17_Some_One_61_m.jpg", 61, 61, 0, "Some_One", ""),
  ]


def test_appa_real_real_and_apparent_ages_and_its_splits(tmp_path):
  root = tmp_path / "appa-real-release"
  for split, files in (("train", ("000000.jpg", "000001.jpg")), ("valid", ("004113.jpg",))):
    for f in files:
      _jpeg(root / split / f"{f}_face.jpg")
    _write_csv(
      root / f"gt_avg_{split}.csv", ["file_name", "num_ratings", "apparent_age_avg", "apparent_age_std", "real_age"],
      [[f, "38", "5.0", "1.1", "4"] for f in files],
    )  # fmt: skip
    _write_csv(
      root / f"allcategories_{split}.csv", ["file", "gender", "race", "makeup", "time", "happiness"],
      [[f, "male" if i == 0 else "female", "caucasian", "", "", ""] for i, f in enumerate(files)],
    )  # fmt: skip
  layouts.import_layout("appa_real", root, tmp_path / "appa.csv")
  assert _rows(tmp_path / "appa.csv") == [
    ("appa-real-release/train/000000.jpg_face.jpg", 4, 4, 0, "", "train"),
    ("appa-real-release/train/000001.jpg_face.jpg", 4, 4, 1, "", "train"),
    ("appa-real-release/valid/004113.jpg_face.jpg", 4, 4, 0, "", "validation"),
  ]
  rows = [dict(r, path=tmp_path / r["path"]) for r in layouts.appa_real(root, age="apparent")]
  assert {(r["age_mean"], r["age_std"]) for r in rows} == {("5.0", "1.1")}


def test_imdb_wiki_mat_1_is_male_and_the_usual_filter(tmp_path):
  from scipy.io import savemat

  root = tmp_path / "imdb_crop"
  paths = [
    "01/nm0000001_rm1_1980-3-10_2010.jpg",
    "02/nm0000002_rm2_1980-9-10_2010.jpg",
    "03/nm3_rm3.jpg",
    "04/nm4.jpg",
    "05/nm5.jpg",
  ]
  for i, p in enumerate(paths):
    _jpeg(root / p, i)

  def datenum(y, m, d):
    return datetime.date(y, m, d).toordinal() + 366

  dob = [datenum(1980, 3, 10), datenum(1980, 9, 10), datenum(1990, 1, 1), datenum(1990, 1, 1), datenum(1990, 1, 1)]
  meta = {
    "dob": np.array([dob], float), "photo_taken": np.array([[2010, 2010, 2010, 2010, 2010]], float),
    "full_path": np.array([paths], dtype=object), "gender": np.array([[1.0, 0.0, np.nan, 1.0, 1.0]]),
    "face_score": np.array([[4.5, 2.0, 3.0, 0.5, 3.0]]), "second_face_score": np.array([[np.nan, np.nan, np.nan, np.nan, 1.2]]),
  }  # fmt: skip
  savemat(root / "imdb.mat", {"imdb": meta})
  layouts.import_layout("imdb_wiki", tmp_path, tmp_path / "imdb.csv")
  # born in March: 30 in 2010; born in September: 29; NaN gender unknown; a low face score and a second face left out
  assert _rows(tmp_path / "imdb.csv") == [
    ("imdb_crop/01/nm0000001_rm1_1980-3-10_2010.jpg", 30, 30, 0, "nm0000001", ""),
    ("imdb_crop/02/nm0000002_rm2_1980-9-10_2010.jpg", 29, 29, 1, "nm0000002", ""),
    ("imdb_crop/03/nm3_rm3.jpg", 20, 20, -1, "nm3", ""),
  ]


def test_imdb_clean_csvs_keep_their_splits_and_boxes(tmp_path):
  """Each CSV with its own images (yiminglin-ai/imdb-clean's README and create_imdb_clean_1024.py): the _1024 CSVs'
  boxes are in the 1024 px crops, the others' in the original photos; a split with both reads the crops."""
  _jpeg(tmp_path / "data" / "imdb-clean-1024" / "01" / "nm1_rm1.jpg", size=(100, 100))
  _jpeg(tmp_path / "data" / "imdb" / "02" / "nm2_rm2.jpg", size=(100, 100))
  head = ["filename", "age", "gender", "x_min", "y_min", "x_max", "y_max", "head_roll", "head_yaw", "head_pitch"]
  (tmp_path / "csvs").mkdir()
  _write_csv(
    tmp_path / "csvs" / "imdb_train_new_1024.csv",
    head,
    [["01/nm1_rm1.jpg", "33", "M", "10", "20", "60", "80", "0", "0", "0"]],
  )
  _write_csv(  # the same split in the original photos' coordinates: not read, as the crops are there
    tmp_path / "csvs" / "imdb_train_new.csv",
    head,
    [["01/nm1_rm1.jpg", "33", "M", "400", "300", "520", "450", "0", "0", "0"]],
  )
  _write_csv(
    tmp_path / "csvs" / "imdb_test_new.csv", head, [["02/nm2_rm2.jpg", "41", "F", "0", "0", "50", "50", "0", "0", "0"]]
  )
  layouts.import_layout("imdb_clean", tmp_path, tmp_path / "clean.csv")
  rows = manifest.read(tmp_path / "clean.csv")
  assert [(r.path, r.age, r.gender, r.box, r.subject, r.split) for r in rows] == [
    ("data/imdb-clean-1024/01/nm1_rm1.jpg", 33, 0, (10, 20, 50, 60), "nm1", "train"),
    ("data/imdb/02/nm2_rm2.jpg", 41, 1, (0, 0, 50, 50), "nm2", "test"),
  ]


def test_morph_csv(tmp_path):
  _jpeg(tmp_path / "Album2" / "003205_00M21.JPG")
  _jpeg(tmp_path / "Album2" / "003206_01F40.JPG")
  _write_csv(
    tmp_path / "morph_2008_nonCommercial.csv", ["id_num", "picture_num", "dob", "doa", "race", "gender", "age", "photo"],
    [["3205", "0", "", "", "B", "M", "21", "Album2/003205_00M21.JPG"], ["3206", "1", "", "", "W", "F", "40", "Album2/003206_01F40.JPG"]],
  )  # fmt: skip
  layouts.import_layout("morph", tmp_path, tmp_path / "morph.csv")
  assert _rows(tmp_path / "morph.csv") == [
    ("Album2/003205_00M21.JPG", 21, 21, 0, "3205", ""),
    ("Album2/003206_01F40.JPG", 40, 40, 1, "3206", ""),
  ]


def test_a_plain_folder_of_age_and_gender(tmp_path):
  for age, g in (("8", "m"), ("30", "female"), ("52", "1")):
    _jpeg(tmp_path / "mine" / age / g / "x.png")
  layouts.import_layout("folder", tmp_path / "mine", tmp_path / "mine.csv")
  assert [(r[1], r[3]) for r in _rows(tmp_path / "mine.csv")] == [(30, 1), (52, 1), (8, 0)]
  with pytest.raises(layouts.LayoutError, match="no images in the afad layout"):
    layouts.import_layout("afad", tmp_path / "mine", tmp_path / "x.csv")


def test_the_data_cli_imports_a_layout_and_builds_it(tmp_path, capsys):
  from jaxface.data.__main__ import main

  for i, (age, g) in enumerate((a, g) for a in (5, 15, 25, 35, 45, 55, 65, 75, 85, 95) for g in ("111", "112")):
    _jpeg(tmp_path / "AFAD" / str(age) / g / f"{i}.jpg", i)
  out = tmp_path / "afad.csv"
  rc = main(["--layout", "afad", "--data", str(tmp_path / "AFAD"), "--write-manifest", str(out), "--dataset", "full",
             "--crop", "as-is", "--image-size", "16", "--tfds-dir", str(tmp_path / "tfds")])  # fmt: skip
  got = json.loads(capsys.readouterr().out)
  assert rc == 0 and got["imported"]["rows"] == 20 and got["dataset"].startswith("face_manifest/afad_")
  assert sum(s["examples"] for s in got["splits"].values()) == 20 and got["crop"] == "as-is"
  assert main(["--data", str(tmp_path / "nope.csv")]) == 2
  assert "nope.csv: no such manifest" in capsys.readouterr().err


# --- building: as good as the utk_face builder -----------------------------------


def test_utkface_as_a_manifest_builds_the_same_splits_and_faces(tmp_path, fake_archive):
  """The manifest path is not a copy: the same images in every split, and the same pixels, as utk_face's."""
  folder = fake_utkface.extract_flat(fake_archive[0], tmp_path / "faces")
  layouts.import_layout("utkface", folder, folder / "manifest.csv")
  utk = prepare.prepare(str(fake_archive[0]), "full", 16, tmp_path / "a")
  man = prepare.prepare(str(folder / "manifest.csv"), "full", 16, tmp_path / "b", crop="as-is")
  assert prepare.name(man).startswith("face_manifest/manifest_")
  for split in ("train", "validation", "test"):
    assert man.info.metadata["splits"][split]["digest"] == utk.info.metadata["splits"][split]["digest"]
    a, b = utk.as_data_source(split), man.as_data_source(split)
    assert [x["file_name"] for x in a] == [x["file_name"] for x in b]
    assert all(np.array_equal(x["image"], y["image"]) and x["age"] == y["age"] and x["gender"] == y["gender"]
               for x, y in zip(a, b, strict=True))  # fmt: skip
  assert man.info.metadata["partial_labels"] is False
  assert man.info.metadata["duplicates"] == utk.info.metadata["duplicates"]


def test_person_disjoint_splits_and_given_splits(tmp_path):
  rows = []
  for person in range(40):
    for k in range(1 + person % 4):
      rows.append({"path": f"p{person}_{k}.jpg", "age": 10 + person, "gender": person % 2, "subject": f"s{person}"})
      _jpeg(tmp_path / f"p{person}_{k}.jpg", person * 10 + k, size=(8, 8))
  rows.append({"path": "fixed.jpg", "age": 30, "gender": "m", "subject": "s_fixed", "split": "test"})
  _jpeg(tmp_path / "fixed.jpg", 999, size=(8, 8))
  manifest.write(tmp_path / "people.csv", rows)
  b = prepare.prepare(str(tmp_path / "people.csv"), "full", 8, tmp_path / "tfds", crop="as-is")
  where = {}
  for split in b.info.splits:
    for ex in b.as_data_source(split):
      where.setdefault(ex["subject"].decode() if isinstance(ex["subject"], bytes) else ex["subject"], set()).add(split)
  assert len(where) == 41 and all(len(s) == 1 for s in where.values()), "a person in two splits"
  assert where["s_fixed"] == {"test"}
  sizes = {k: v["examples"] for k, v in b.info.metadata["splits"].items()}
  assert sum(sizes.values()) == len(rows) and sizes["train"] > sizes["validation"] > 0


def test_grouped_split_keeps_persons_whole_and_sizes_near(tmp_path):
  from jaxface.data import labels, source

  recs = [
    source.Record(f"{p}_{k}", f"{p:04d}{k}", labels.Labels(20 + p % 50, p % 2, -1), subject=f"s{p}")
    for p in range(300)
    for k in range(1 + p % 3)
  ]
  out = splits.grouped_split(recs, {"test": 60, "train": 400}, seed=0)
  persons = [{r.subject for r in v} for v in out.values()]
  assert not persons[0] & persons[1]
  assert abs(len(out["test"]) - 60) <= 12 and abs(len(out["train"]) - 400) <= 24


# --- cropping photos with the detector ---------------------------------------------


def _face():
  from skimage import data

  return Image.fromarray(data.astronaut()).crop((150, 40, 310, 200))


def test_photos_are_cropped_by_the_detector_as_predict_crops_them(tmp_path):
  from jaxface import faces

  face = _face().resize((120, 120))
  one = Image.new("RGB", (500, 400), (90, 90, 90))
  one.paste(face, (300, 200))
  one.save(tmp_path / "one.jpg", quality=95)
  two = Image.new("RGB", (700, 400), (90, 90, 90))
  two.paste(face, (40, 100))
  two.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (450, 150))
  two.save(tmp_path / "two.jpg", quality=95)
  Image.new("RGB", (300, 300), (120, 90, 60)).save(tmp_path / "none.jpg")
  manifest.write(
    tmp_path / "photos.csv",
    [
      {"path": "one.jpg", "age": 40, "gender": "f"},
      {"path": "two.jpg", "age": 40, "gender": "f"},
      {"path": "two.jpg".replace("two", "two_box"), "age": 41, "gender": "f", "box": (450, 150, 120, 120)},
      {"path": "none.jpg", "age": 40, "gender": "f"},
    ],
  )
  (tmp_path / "two_box.jpg").write_bytes((tmp_path / "two.jpg").read_bytes() + b"\0")  # same photo, other bytes
  b = prepare.prepare(str(tmp_path / "photos.csv"), "full", 64, tmp_path / "tfds", crop="detect")
  skipped = {s["file_name"]: s["reason"] for s in b.info.metadata["skipped"]}
  assert skipped == {"two.jpg": "2 faces found and no box to choose one", "none.jpg": "no face found"}
  got = {ex["file_name"].decode(): ex["image"] for split in b.info.splits for ex in b.as_data_source(split)}
  assert set(got) == {"one.jpg", "two_box.jpg"}
  photo = Image.open(tmp_path / "one.jpg").convert("RGB")
  want = faces.crop(photo, faces.detect(photo)[0], 64)
  assert np.abs(got["one.jpg"].astype(float) - want).mean() < 1.0, "not framed as predict frames it"
  # the boxed row took the right-hand (mirrored) face: its crop is the mirror of one.jpg's
  mirrored = got["two_box.jpg"][:, ::-1].astype(float)
  assert (
    np.abs(mirrored - got["one.jpg"]).mean() < 0.5 * np.abs(got["two_box.jpg"].astype(float) - got["one.jpg"]).mean()
  )


def test_as_is_ignores_boxes_and_takes_the_image_whole(tmp_path):
  img = _jpeg(tmp_path / "a.jpg", size=(60, 80))
  manifest.write(
    tmp_path / "m.csv", [{"path": "a.jpg", "age": 3, "gender": "m", "box": (0, 0, 10, 10), "split": "test"}]
  )
  b = prepare.prepare(str(tmp_path / "m.csv"), "full", 16, tmp_path / "tfds", crop="as-is")
  from jaxface.data import source

  (ex,) = list(b.as_data_source("test"))
  assert np.array_equal(ex["image"], source.decode(img.read_bytes(), 16))


def test_an_undecodable_image_is_skipped_with_its_reason(tmp_path):
  _jpeg(tmp_path / "good.jpg")
  data = (tmp_path / "good.jpg").read_bytes()
  (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
  (tmp_path / "empty.jpg").write_bytes(b"")
  rows = [{"path": p, "age": 3, "gender": "m", "split": "train"} for p in ("good.jpg", "cut.jpg", "empty.jpg")]
  manifest.write(tmp_path / "m.csv", rows)
  b = prepare.prepare(str(tmp_path / "m.csv"), "full", 16, tmp_path / "tfds", crop="as-is")
  skipped = {s["file_name"]: s["reason"] for s in b.info.metadata["skipped"]}
  assert skipped["empty.jpg"] == "empty file (0 bytes)" and "does not decode" in skipped["cut.jpg"]
  assert b.info.metadata["splits"]["train"]["examples"] == 1


def test_write_then_read_round_trips(tmp_path):
  rows = [
    {"path": "a.jpg", "age_min": 25, "age_max": 32, "gender": "", "box": (1.5, 2, 3, 4), "group": "x, y"},
    {"path": "b.jpg", "age_mean": 30.5, "age_std": 2.5, "gender": "f", "source": 'say "hi"'},
  ]
  for name in ("m.csv", "m.jsonl"):
    manifest.write(tmp_path / name, rows)
    a, b = manifest.read(tmp_path / name)
    assert (a.age_min, a.age_max, a.gender, a.box, a.group) == (25, 32, -1, (1.5, 2, 3, 4), "x, y")
    assert (b.age, b.age_std, b.gender, b.source) == (30.5, 2.5, 1, 'say "hi"')


def test_encoded_bytes_are_not_images_held_in_memory(tmp_path):
  """Records of a manifest hold where the image is, never its bytes: a build streams."""
  from jaxface.data import collection

  _jpeg(tmp_path / "a.jpg")
  manifest.write(tmp_path / "m.csv", [{"path": "a.jpg", "age": 3, "gender": "m"}])
  records, _ = collection.scan(tmp_path / "m.csv", manifest.read(tmp_path / "m.csv"), "as-is", workers=1)
  assert records[0].data == b"" and records[0].path == tmp_path / "a.jpg"
  assert records[0].read() == (tmp_path / "a.jpg").read_bytes()


def test_mixing_manifests_keeps_each_source_and_weights_sample_them(tmp_path, capsys):
  from jaxface.data import pipeline
  from jaxface.data.__main__ import main

  for name, n in (("a", 30), ("b", 10)):
    rows = []
    for i in range(n):
      _jpeg(tmp_path / name / f"{i}.jpg", hash((name, i)) % 1000, size=(8, 8))
      rows.append({"path": f"{i}.jpg", "age": 10 + i, "gender": i % 2})
    manifest.write(tmp_path / name / f"{name}.csv", rows)
  out = tmp_path / "both.csv"
  rc = main(["--mix", str(tmp_path / "a" / "a.csv"), str(tmp_path / "b" / "b.csv"), "--write-manifest", str(out),
             "--dataset", "full", "--crop", "as-is", "--image-size", "8", "--tfds-dir", str(tmp_path / "tfds")])  # fmt: skip
  got = json.loads(capsys.readouterr().out)
  assert rc == 0 and got["imported"]["mixed"] == {"a": 30, "b": 10}
  assert {r.source for r in manifest.read(out)} == {"a", "b"} and manifest.read(out)[0].path == "a/0.jpg"
  sources = np.array(["a"] * 300 + ["b"] * 100)
  draw = lambda weights: pipeline.weighted_indices(pipeline.source_weights(sources, weights), seed=0)  # noqa: E731
  idx = draw({"b": 2.5, "a": 0.5})
  counts = {s: int((sources[idx] == s).sum()) for s in ("a", "b")}
  assert abs(counts["a"] - 150) < 30 and 200 <= counts["b"] <= 300 and np.array_equal(idx, draw({"b": 2.5, "a": 0.5}))
  assert (draw({"a": 0}) >= 300).all()
  with pytest.raises(ValueError, match=r"name \['c'\], which the training split does not hold"):
    draw({"c": 1})
  with pytest.raises(ValueError, match="leave no training example"):
    draw({"a": 0, "b": 0})


def test_balance_weights_strata_by_their_size_with_a_cap():
  """--balance: a stratum of race x age band x gender n times smaller is taken sqrt(n) times as often (0.5), at
  most BALANCE_CAP times; the largest stratum once; the bands are labels.AGE_BANDS."""
  from jaxface.data import pipeline

  race = np.array([0] * 400 + [2] * 100 + [2] * 4 + [0] * 100)
  age = np.array([30] * 400 + [30] * 100 + [85] * 4 + [5] * 100)  # 20-39, 20-39, 80+, 0-12
  gender = np.array([0] * 400 + [1] * 100 + [0] * 4 + [0] * 100)
  w = pipeline.stratum_weights(race, age, gender, 0.5)
  assert np.allclose(w[:400], 1.0) and np.allclose(w[400:500], 2.0) and np.allclose(w[500:504], pipeline.BALANCE_CAP)
  assert np.allclose(w[504:], 2.0)
  assert np.allclose(pipeline.stratum_weights(race, age, gender, 0.0), 1.0)
  idx = pipeline.weighted_indices(w, seed=0)
  assert len(idx) == 400 + 200 + 16 + 200 and np.bincount(idx, minlength=len(w)).max() == 4


def test_manifest_reading_mistakes_are_named_by_line(tmp_path):
  """Excel's byte-order mark is read; a column named twice, JSON's true as an age, a path through a symbolic link
  out of the folder, and a box mostly outside its photo are refused, naming the line."""
  import os

  _jpeg(tmp_path / "a.jpg", 1, size=(40, 30))
  (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfpath,age,gender\na.jpg,30,f\n")
  assert manifest.read(tmp_path / "bom.csv")[0].age_min == 30
  (tmp_path / "twice.csv").write_text("path,age,age\na.jpg,30,40\n")
  with pytest.raises(manifest.ManifestError, match=r"twice.csv, line 1: the header names \['age'\] more than once"):
    manifest.read(tmp_path / "twice.csv")
  (tmp_path / "bool.jsonl").write_text('{"path": "a.jpg", "age": true}\n')
  with pytest.raises(manifest.ManifestError, match="bool.jsonl, line 1: age true is not a number"):
    manifest.read(tmp_path / "bool.jsonl")
  outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
  outside.mkdir()
  _jpeg(outside / "secret.jpg", 2)
  os.symlink(outside, tmp_path / "link")
  (tmp_path / "link.csv").write_text("path,age\nlink/secret.jpg,30\n")
  with pytest.raises(manifest.ManifestError, match="link.csv, line 2: .*symbolic link"):
    manifest.read(tmp_path / "link.csv")
  (tmp_path / "box.csv").write_text("path,age,box\na.jpg,30,0 0 40 30\na.jpg.x,1,0 0 1 1\n")
  (tmp_path / "far.csv").write_text("path,age,box\na.jpg,30,0 0 400000 300000\n")
  with pytest.raises(manifest.ManifestError, match="far.csv, line 2: box .* mostly outside its 40x30 photo a.jpg"):
    manifest.read(tmp_path / "far.csv")
  assert manifest.read(tmp_path / "box.csv")[0].box == (0, 0, 40, 30)  # a box that fits; a missing photo: the build's


def test_a_layout_that_fails_its_check_leaves_no_manifest(tmp_path):
  for age in ("30", "999"):  # 999 is no age: the read-back refuses its row
    (tmp_path / "faces" / age / "f").mkdir(parents=True)
    _jpeg(tmp_path / "faces" / age / "f" / "a.jpg")
  out = tmp_path / "out.csv"
  with pytest.raises(manifest.ManifestError, match="age 999 is outside"):
    layouts.import_layout("folder", tmp_path / "faces", out)
  assert not out.exists()


def test_a_manifest_is_named_by_its_place_and_its_images_too(tmp_path):
  """The same bytes in another folder, or an image fixed in place, make another dataset (not A's, reused)."""
  import os

  from jaxface.data.face_manifest import face_manifest_dataset_builder as fm

  for d in ("a", "b"):
    (tmp_path / d).mkdir()
    _jpeg(tmp_path / d / "x.jpg", seed=ord(d))
    (tmp_path / d / "faces.csv").write_text("path,age,gender\nx.jpg,30,f\n")
  name = lambda d: fm.make_config(tmp_path / d / "faces.csv").name  # noqa: E731
  first = name("a")
  assert first == name("a") and first != name("b")
  os.utime(tmp_path / "a" / "x.jpg", ns=(1, 1))
  assert name("a") != first
