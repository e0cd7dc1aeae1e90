"""The age interval: split-conformal calibration, and the workdir -> evaluate / predict / export path."""

import json
import logging
import math
import shutil

import numpy as np
import pytest
from PIL import Image

from jaxface.inference import calibration


def test_conformal_coverage_is_nominal_on_synthetic_errors():
  """Gaussian errors (sigma 7): the average coverage of fresh faces is k/(n+1), the conformal value, within 4 s.e.

  k/(n+1) is at least the nominal 90 % and at most 90 % + 1/(n+1); 4 standard errors are 0.0008 here, below the
  0.002 that an off-by-one quantile (k-1 or k+1) would move it by.
  """
  n, trials, sigma, coverage = 500, 4000, 7.0, 0.9
  rng = np.random.default_rng(0)
  qs = np.array([calibration.conformal_quantile(np.abs(e), coverage) for e in rng.normal(0, sigma, (trials, n))])
  covered = np.vectorize(math.erf)(qs / (sigma * math.sqrt(2)))  # P(|e| <= q), exactly, for each calibration
  k = math.ceil((n + 1) * coverage)
  expect = k / (n + 1)
  se = math.sqrt(expect * (1 - expect) / (n + 2)) / math.sqrt(trials)
  assert coverage <= expect <= coverage + 1 / (n + 1)
  assert abs(covered.mean() - expect) < 4 * se, (covered.mean(), expect, se)


def test_too_few_faces_for_the_coverage_is_an_error():
  with pytest.raises(ValueError, match="5 calibration faces are too few for 90% coverage"):
    calibration.conformal_quantile(np.arange(5.0), 0.9)
  assert calibration.conformal_quantile(np.arange(9.0), 0.9) == 8.0  # ceil(10 * 0.9) = 9th smallest


@pytest.fixture
def calibrated(trained, tmp_path):
  """A copy of the trained workdir, calibrated at 50 % on its 7 validation faces (90 % needs 9)."""
  from jaxface.inference import evaluation

  wd = tmp_path / "calibrated"
  shutil.copytree(trained, wd)
  result = evaluation.evaluate(wd, "validation", calibrate=True, coverage=0.5)
  return wd, result


def test_evaluate_calibrates_then_reports_coverage_and_width(calibrated):
  from jaxface.inference import evaluation

  wd, val = calibrated
  cal = json.loads((wd / "calibration.json").read_text())
  assert cal["coverage"] == 0.5 and cal["n"] == 7 and cal["split"] == "validation" and cal["step"] == val["step"]
  rows = np.genfromtxt(wd / "predictions_validation.csv", delimiter=",", names=True, dtype=None, encoding=None)
  errors = np.sort(np.abs(rows["age"] - rows["pred_age"]))
  assert cal["half_width"] == pytest.approx(errors[3], abs=2e-3)  # the ceil(8 * 0.5) = 4th smallest error
  assert val["interval"]["in_sample"] and val["interval"]["coverage"] == pytest.approx(
    np.mean(errors <= errors[3]), abs=1e-4
  )
  test = evaluation.evaluate(wd, "test")
  iv = test["interval"]
  assert not iv["in_sample"] and iv["n"] == test["n"] and iv["nominal_coverage"] == 0.5
  assert iv["mean_width"] <= 2 * cal["half_width"] + 1e-3 and 0 <= iv["coverage"] <= 1
  assert sum(b["n"] for b in iv["per_age_band"].values()) == test["n"]


def test_predict_and_export_give_the_interval_evaluate_calibrated(calibrated, tmp_path):
  from jaxface import Predictor, export

  wd, _ = calibrated
  q = json.loads((wd / "calibration.json").read_text())["half_width"]
  face = Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8))
  (rec,) = Predictor.from_workdir(wd, detect=False).predict(face)
  assert rec["age_low"] == pytest.approx(max(rec["age"] - q, 0), abs=0.011)
  assert rec["age_high"] == pytest.approx(rec["age"] + q, abs=0.011)
  assert export.main(["--workdir", str(wd), "--out", str(tmp_path / "m.jaxface")]) == 0
  (got,) = Predictor.from_export(tmp_path / "m.jaxface", detect=False).predict(face)
  assert got["age_low"] == pytest.approx(rec["age_low"], abs=0.011)
  assert got["age_high"] == pytest.approx(rec["age_high"], abs=0.011)


def test_an_uncalibrated_workdir_predicts_without_an_interval_and_says_why(trained, caplog):
  from jaxface import Predictor
  from jaxface.inference import evaluation

  face = Image.fromarray(np.full((200, 200, 3), 128, np.uint8))
  with caplog.at_level(logging.WARNING):
    (rec,) = Predictor.from_workdir(trained, detect=False).predict(face)
  assert "age_low" not in rec and "has no calibration.json, so predictions have no age interval" in caplog.text
  result = evaluation.evaluate(trained, "validation")
  assert result["interval"] is None and "--calibrate" in result["interval_note"]


def test_the_stored_quantile_is_rounded_up_never_down():
  """A quantile stored rounded down would make the interval cover less than the coverage it promises."""
  errors = np.full(50, 3.00004)  # round(q, 4) would give 3.0, under every calibration error
  cal = calibration.fit(np.zeros(50), errors, None, 0.9)
  assert cal["half_width"] >= 3.00004 and cal["half_width"] == pytest.approx(3.0001)
  assert all(v >= 3.00004 for v in cal["levels"].values())
  assert calibration.round_up(2.5) == 2.5 and calibration.round_up(0.12344) == 0.1235
