"""predict on real photos that ship with scikit-image, and against evaluate on UTKFace-style faces."""

import csv
import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

skdata = pytest.importorskip("skimage.data")

from jaxface import Predictor, faces, predict  # noqa: E402
from jaxface.inference import evaluation  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
  d = tmp_path_factory.mktemp("photos")
  for name in ("astronaut", "chelsea", "coffee"):
    Image.fromarray(getattr(skdata, name)()).save(d / f"{name}.jpg", quality=95)
  return d


@pytest.fixture(scope="module")
def predictor(trained):
  return Predictor.from_workdir(trained, batch_size=4)


def test_astronaut_has_one_face_in_the_right_place(predictor, photos):
  recs = predictor.predict(photos / "astronaut.jpg")
  assert len(recs) == 1 and recs[0]["status"] == "ok"
  x, y, w, h = recs[0]["box"]
  assert 180 < x + w / 2 < 270 and 70 < y + h / 2 < 160 and 60 < w < 140  # her face, not the helmet or flag
  assert set(recs[0]) == {"file", "status", "face", "box", "age", "gender", "p_female", "score"}
  assert recs[0]["gender"] in ("male", "female") and 0 <= recs[0]["p_female"] <= 1 and recs[0]["score"] > 0


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_no_face_in_cat_or_coffee(predictor, photos, name):
  assert predictor.predict(photos / f"{name}.jpg") == [{"file": str(photos / f"{name}.jpg"), "status": "no_face"}]


def test_path_pil_and_array_agree(predictor, photos):
  img = Image.open(photos / "astronaut.jpg")
  a = predictor.predict(photos / "astronaut.jpg")[0]
  b = predictor.predict(img)[0]
  c = predictor.predict(np.asarray(img))[0]
  assert a["box"] == b["box"] == c["box"] and a["age"] == b["age"] == c["age"]


def test_cli_jsonl_csv_annotate_and_failures(trained, photos, tmp_path, capsys):
  (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
  (tmp_path / "empty_folder").mkdir()
  out = tmp_path / "faces.jsonl"
  rc = predict.main(
    [
      str(photos),
      str(tmp_path / "broken.jpg"),
      str(tmp_path / "empty_folder"),
      "--workdir",
      str(trained),
      "--out",
      str(out),
      "--annotate",
      str(tmp_path / "ann"),
    ]
  )
  assert rc == 1  # some inputs failed
  recs = [json.loads(line) for line in out.read_text().splitlines()]
  by_status = {}
  for r in recs:
    by_status.setdefault(r["status"], []).append(r)
  assert len(by_status["ok"]) == 1 and by_status["ok"][0]["file"].endswith("astronaut.jpg")
  assert sorted(r["file"].rsplit("/", 1)[1] for r in by_status["no_face"]) == ["chelsea.jpg", "coffee.jpg"]
  errors = {r["file"].rsplit("/", 1)[1]: r["error"] for r in by_status["error"]}
  assert "not a readable image" in errors["broken.jpg"] and "no images" in errors["empty_folder"]
  assert "1 faces, 2 without a face, 2 failed" in capsys.readouterr().err
  annotated = Image.open(tmp_path / "ann" / photos.name / "astronaut.jpg")  # below the inputs' common folder
  assert annotated.size == (512, 512)
  assert not np.array_equal(np.asarray(annotated), np.asarray(Image.open(photos / "astronaut.jpg")))
  assert (
    predict.main([str(photos / "astronaut.jpg"), "--workdir", str(trained), "--csv", "--out", str(tmp_path / "t.csv")])
    == 0
  )
  rows = list(csv.DictReader(open(tmp_path / "t.csv")))
  assert len(rows) == 1 and rows[0]["status"] == "ok" and json.loads(rows[0]["box"]) == by_status["ok"][0]["box"]


def test_no_detect_equals_evaluate(trained, fake_archive, tmp_path):
  """Validation faces through predict --no-detect give evaluate's predictions for the same files."""
  evaluation.evaluate(trained, "validation")
  with open(trained / "predictions_validation.csv") as f:
    want = {r["file_name"]: r for r in csv.DictReader(f)}
  with tarfile.open(fake_archive[0]) as tar:
    for m in tar:
      name = m.name.split("/", 1)[1]
      if name in want:
        (tmp_path / name).write_bytes(tar.extractfile(m).read())
  p = Predictor.from_workdir(trained, batch_size=4, detect=False)
  got = list(p.predict_many(faces.load_photo(tmp_path / n) for n in want))
  assert len(got) == len(want) == 7
  for r in got:
    w = want[r["file"].rsplit("/", 1)[1]]
    assert r["age"] == pytest.approx(float(w["pred_age"]), abs=0.01)
    assert r["p_female"] == pytest.approx(float(w["p_female"]), abs=1e-3)


def test_no_detect_on_a_utkface_face_gives_one_record(trained, real_data):
  with tarfile.open(real_data) as tar:
    m = next(m for m in tar if m.isfile() and m.name.endswith(".jpg"))
    data = tar.extractfile(m).read()
  recs = Predictor.from_workdir(trained, detect=False).predict(Image.open(io.BytesIO(data)))
  assert len(recs) == 1 and recs[0]["status"] == "ok" and recs[0]["box"] == [0, 0, 200, 200]


def breaks_on(size: tuple[int, int], monkeypatch) -> None:
  """The detector raises on any batch holding a photo of ``size`` (as a malformed photo might make it)."""
  real = faces.detect_many

  def detect_many(images, *a, **kw):
    if any(im.size == size for im in images):
      raise RuntimeError("the detector broke")
    return real(images, *a, **kw)

  monkeypatch.setattr(faces, "detect_many", detect_many)


def test_a_photo_that_breaks_the_detector_is_its_own_error_row(predictor, photos, monkeypatch):
  """records.photo_rows: its chunk is retried a photo at a time, so the other photos of the chunk are labelled."""
  breaks_on((97, 89), monkeypatch)
  odd = Image.new("RGB", (97, 89), (128, 128, 128))
  got = list(predictor.predict_many(
    [faces.load_photo(photos / "astronaut.jpg"), faces.load_photo(odd, "odd"), faces.load_photo(photos / "coffee.jpg")]
  ))  # fmt: skip
  by_file = {r["file"]: r for r in got}
  assert by_file["odd"] == {
    "file": "odd",
    "status": "error",
    "error": "detection failed (RuntimeError: the detector broke)",
  }
  assert by_file[str(photos / "astronaut.jpg")]["status"] == "ok"
  assert by_file[str(photos / "coffee.jpg")]["status"] == "no_face"
