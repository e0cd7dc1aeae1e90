"""The model jaxface ships: it is in the package, labels a photo on a fresh install with no training and no
download, and gives the predictions its committed results say it gives."""

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_DATA
from PIL import Image

from jaxface import shipped

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results" / "shipped"


def test_the_shipped_file_is_small_float16_noted_calibrated_and_carries_the_detector():
  assert shipped.MODEL.is_file(), f"{shipped.MODEL} is missing: the package ships no model"
  assert shipped.MODEL.stat().st_size <= 8 * 2**20
  with zipfile.ZipFile(shipped.MODEL) as z:
    meta = json.loads(z.read("meta.json"))
  assert meta["weights"] == "float16" and "non-commercial research only" in meta["note"]
  assert set(meta["calibration"]["band_q"]) and meta["calibration"]["scaled_by"] == "spread"
  assert shipped.detector_tflite() is not None


def test_a_fresh_install_labels_the_astronaut_with_no_training_and_no_download(tmp_path):
  """``python -m jaxface.predict photo`` with no model flag, an empty cache and no package index: the record the
  committed results give (experiments/results/shipped/astronaut.json)."""
  skdata = pytest.importorskip("skimage.data")
  photo = tmp_path / "astronaut.jpg"
  Image.fromarray(skdata.astronaut()).save(photo, quality=95)
  env = {**os.environ, "JAXFACE_CACHE": str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
  res = subprocess.run(
    [sys.executable, "-m", "jaxface.predict", str(photo)], capture_output=True, text=True, env=env, timeout=300
  )
  assert res.returncode == 0, res.stderr[-3000:]
  assert "non-commercial research only" in res.stderr
  (got,) = [json.loads(line) for line in res.stdout.splitlines()]
  want = json.loads((RESULTS / "astronaut.json").read_text())["record"]
  assert got["status"] == "ok" and got["gender"] == want["gender"]
  np.testing.assert_allclose(got["box"], want["box"], atol=1.0)
  for k in ("age", "age_low", "age_high"):
    assert got[k] == pytest.approx(want[k], abs=0.05), k
  assert got["p_female"] == pytest.approx(want["p_female"], abs=5e-3)


@pytest.mark.skipif(not REAL_DATA, reason="needs JAXFACE_DATA (UTKFace.tar.gz)")
def test_the_shipped_model_gives_its_committed_test_predictions():
  """The first 64 test faces (by name), decoded as the dataset stores them, against predictions_test.csv."""
  from jaxface.data import source as source_lib
  from jaxface.inference.exported import ExportedModel

  model = ExportedModel(shipped.MODEL)
  with open(RESULTS / "predictions_test.csv", newline="") as f:
    rows = {r["file_name"]: r for r in csv.DictReader(f)}
  names = sorted(rows)[:64]
  images = {}
  for name, data in source_lib.iter_files(source_lib.locate(REAL_DATA)):
    if name in names:
      images[name] = source_lib.decode(data, model.image_size)
  assert len(images) == 64
  out = model(np.stack([images[n] for n in names]))
  np.testing.assert_allclose(np.asarray(out["age"]), [float(rows[n]["pred_age"]) for n in names], atol=0.02)
  np.testing.assert_allclose(np.asarray(out["p_female"]), [float(rows[n]["p_female"]) for n in names], atol=2e-3)


def test_the_model_card_states_the_terms_and_the_committed_numbers():
  card = (Path(__file__).resolve().parents[1] / "docs" / "model-card.md").read_text()
  result = json.loads((RESULTS / "shipped_test.json").read_text())
  assert "non-commercial research only" in card and "UTKFace" in card
  assert f"{result['float16']['age_mae']:.2f}" in card and f"{100 * result['float16']['gender_acc']:.1f}" in card
