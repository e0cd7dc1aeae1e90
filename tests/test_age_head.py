"""The distribution age head: its loss and expectation by hand, the spread-scaled interval, and the workdir paths."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxface.data import labels
from jaxface.inference import calibration
from jaxface.models import heads
from jaxface.training import losses


def test_expectation_and_spread_by_hand():
  mean, spread = heads.expectation_and_spread(jnp.array([[0.0, 0.5, 0.5, 0.0], [0.25, 0.0, 0.0, 0.75]]))
  np.testing.assert_allclose(mean, [1.5, 2.25], atol=1e-6)  # 0.5*1 + 0.5*2; 0.75*3
  np.testing.assert_allclose(spread, [0.5, math.sqrt(0.25 * 2.25**2 + 0.75 * 0.75**2)], atol=1e-6)


def test_distribution_loss_by_hand():
  """4 ages, true age 1, sigma 1: the Gaussian label, the KL to softmax(logits), plus |expectation - 1|."""
  logits = np.array([0.0, 1.0, 2.0, 0.5])
  q = np.exp(logits) / np.exp(logits).sum()
  t = np.exp(-0.5 * (np.arange(4) - 1.0) ** 2)
  t /= t.sum()
  expect = (q * np.arange(4)).sum()
  want = (t * np.log(t / q)).sum() + abs(expect - 1.0)
  out = {"age": jnp.array([expect], jnp.float32), "age_logits": jnp.array([logits], jnp.float32)}
  np.testing.assert_allclose(losses.gaussian_labels(jnp.array([1.0]), 1.0, 4)[0], t, atol=1e-6)
  np.testing.assert_allclose(losses.age_term(out, jnp.array([1.0]), 1.0), [want], rtol=1e-5)
  # The joint loss: weights 2 (age) and 0.5 (gender), one example, gender logit 0 (BCE = log 2).
  batch = {"age": jnp.array([1]), "gender": jnp.array([1])}
  loss, sums = losses.joint(out | {"gender_logit": jnp.array([0.0])}, batch, losses.Objective(2.0, 0.5, 1.0))
  assert float(loss) == pytest.approx(2 * want + 0.5 * math.log(2), rel=1e-5)
  assert float(sums["ae"]) == pytest.approx(abs(expect - 1.0), rel=1e-5)


def test_mean_variance_loss_by_hand():
  """4 ages, true age 1: -log q(1) + 0.2 * (expectation - 1)^2 / 2 + 0.05 * the variance, and no sigma involved."""
  logits = np.array([0.0, 1.0, 2.0, 0.5])
  q = np.exp(logits) / np.exp(logits).sum()
  expect = (q * np.arange(4)).sum()
  want = -np.log(q[1]) + 0.2 * (expect - 1.0) ** 2 / 2 + 0.05 * (q * (np.arange(4) - expect) ** 2).sum()
  out = {"age": jnp.array([expect], jnp.float32), "age_logits": jnp.array([logits], jnp.float32)}
  for sigma in (1.0, 3.0):
    np.testing.assert_allclose(losses.age_term(out, jnp.array([1.0]), sigma, "mean_variance"), [want], rtol=1e-5)
  with pytest.raises(ValueError, match="unknown distribution-head loss"):
    losses.age_term(out, jnp.array([1.0]), 1.0, "sord")
  # The flag reaches the objective the train step builds; an unknown loss is refused with the config.
  from jaxface import config

  assert losses.Objective.of(config.make("mobilenet_v2", "cpu", age_loss="mean_variance")).age_loss == "mean_variance"
  assert losses.Objective.of(config.make("mobilenet_v2", "cpu")).age_loss == "dldl"
  with pytest.raises(ValueError, match="unknown age loss 'sord'"):
    config.make("custom", "cpu", age_loss="sord")
  with pytest.raises(ValueError, match="add --age-head distribution"):
    config.make("custom", "classic", age_loss="mean_variance")


def test_regression_loss_is_the_squared_error():
  out = {"age": jnp.array([30.0, 20.0]), "gender_logit": jnp.array([0.0, 0.0])}
  batch = {"age": jnp.array([33, 20]), "gender": jnp.array([0, 1])}
  loss, _ = losses.joint(out, batch, losses.Objective(0.1, 0.0))
  assert float(loss) == pytest.approx(0.1 * (9 + 0) / 2)


def test_the_distribution_head_starts_near_the_mean_age():
  from jaxface.models import get_model

  model = get_model("custom", image_size=32, age_head="distribution", widths={"trunk": [4, 4, 4], "branch": [4, 4, 4]})
  out = model(jnp.zeros((2, 32, 32, 3)))
  assert out["age_logits"].shape == (2, heads.AGES) and heads.AGES == 117
  assert 30 < float(out["age"][0]) < 40  # the prior (mean 33, std 20, cut at 0) before any training


def test_spread_scaled_conformal_coverage_is_nominal_and_adapts():
  """Errors with a known per-face noise level: the interval scaled by it covers 90 % of fresh faces, low and high noise
  alike (within 4 standard errors), while a constant width over-covers the easy faces and under-covers the hard ones."""
  rng = np.random.default_rng(0)
  n = 2000
  sigma = rng.choice([2.0, 8.0], n)  # the predicted spread, equal to the true noise level here
  cal = calibration.fit(np.zeros(n), rng.normal(0, sigma), sigma, 0.9)
  assert cal["scaled_by"] == "spread" and cal["q"] == pytest.approx(1.645, abs=0.08)  # the normal's 95th percentile
  m = 20000
  fresh_sigma = rng.choice([2.0, 8.0], m)
  pred = rng.normal(0, fresh_sigma) + 50
  low, high = calibration.interval(pred, cal, fresh_sigma)
  inside = (low <= 50) & (50 <= high)
  se = math.sqrt(0.9 * 0.1 / (m / 2))
  for s in (2.0, 8.0):
    assert abs(inside[fresh_sigma == s].mean() - 0.9) < 4 * se + 0.02  # + the calibration's own sampling error
  flat = calibration.fit(np.zeros(n), rng.normal(0, sigma), None, 0.9)
  low, high = calibration.interval(pred, flat)
  flat_inside = (low <= 50) & (50 <= high)
  assert flat_inside[fresh_sigma == 2.0].mean() > 0.99 and flat_inside[fresh_sigma == 8.0].mean() < 0.85
  with pytest.raises(ValueError, match="scales the interval by the predicted spread"):
    calibration.interval(pred, cal)


def test_mondrian_bands_each_get_their_coverage():
  """Errors that grow with age faster than the spread says: one q over-covers the young and under-covers the old;
  a q per band of predicted age (band_q) covers 90 % in each band (within 4 standard errors plus the calibration's
  own sampling error)."""
  rng = np.random.default_rng(0)

  def faces(n):
    age = rng.choice([8.0, 30.0, 70.0], n)
    noise = np.where(age > 60, 9.0, np.where(age < 13, 1.0, 3.0))  # the truth
    return age, age + rng.normal(0, noise), np.full(n, 3.0)  # a spread that does not know it

  cal = calibration.fit(*faces(3000), 0.9)
  assert set(cal["band_q"]) == set(labels.AGE_BAND_NAMES)
  thirty = calibration.fit(np.full(100, 30.0), 30 + rng.normal(0, 1, 100), np.ones(100), 0.9)
  assert thirty["band_q"]["80+"] == thirty["q"] == thirty["band_q"]["20-39"]  # a band without faces: the overall q
  age, pred, spread = faces(30000)
  low, high = calibration.interval(pred, cal, spread)
  inside = (low <= age) & (age <= high)
  one_q = {k: v for k, v in cal.items() if k != "band_q"}
  low1, high1 = calibration.interval(pred, one_q, spread)
  inside1 = (low1 <= age) & (age <= high1)
  for a in (8.0, 30.0, 70.0):
    m = age == a
    assert abs(inside[m].mean() - 0.9) < 4 * math.sqrt(0.09 / m.sum()) + 0.02, (a, inside[m].mean())
  assert inside1[age == 8.0].mean() > 0.99 and inside1[age == 70.0].mean() < 0.8


@pytest.fixture(scope="module")
def trained_distribution(tmp_path_factory, fake_archive):
  """A tiny custom CNN with the distribution head, 2 epochs on the fake archive, calibrated at 50 % on validation."""
  from conftest import tiny_cfg

  from jaxface.inference import evaluation
  from jaxface.training import trainer

  wd = tmp_path_factory.mktemp("trained_distribution")
  cfg = tiny_cfg(fake_archive[0], tmp_path_factory.mktemp("tfds_distribution"), age_head="distribution")
  assert cfg.age_loss_weight == 1.0  # the head's own default
  trainer.train(cfg, wd)
  evaluation.evaluate(wd, "validation", calibrate=True, coverage=0.5)
  return wd


def test_predict_and_evaluate_agree_on_age_and_interval(trained_distribution, fake_archive, tmp_path):
  """The same validation faces through predict (their 200 px files, as crops) and evaluate give one age and interval."""
  import tarfile

  from jaxface import Predictor
  from jaxface.inference import evaluation

  wd = trained_distribution
  cal = json.loads((wd / "calibration.json").read_text())
  assert (
    cal["scaled_by"] == "spread" and cal["q"] > 0 and set(cal["levels"]) == {"0.5", "0.6", "0.7", "0.8", "0.85"}
  )  # 7 faces: not 0.9
  val = evaluation.evaluate(wd, "validation")
  assert val["interval"]["n"] == val["n"] and set(val["interval"]["reliability"]) == set(cal["levels"])
  rows = {r["file_name"]: r for r in _csv(wd / "predictions_validation.csv")}
  assert all(float(r["age_spread"]) > 0 for r in rows.values())
  with tarfile.open(fake_archive[0]) as tar:
    members = {m.name.rsplit("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
    photos = {}
    for name in list(rows)[:4]:
      (tmp_path / name).write_bytes(tar.extractfile(members[name]).read())
      photos[name] = tmp_path / name
  predictor = Predictor.from_workdir(wd, detect=False)
  for name, path in photos.items():
    (rec,) = predictor.predict(path)
    want = rows[name]
    assert rec["age"] == pytest.approx(float(want["pred_age"]), abs=0.02)
    assert rec["age_low"] == pytest.approx(float(want["age_low"]), abs=0.02)
    assert rec["age_high"] == pytest.approx(float(want["age_high"]), abs=0.02)
    assert rec["age_low"] < rec["age"] < rec["age_high"]


def test_the_exported_distribution_model_gives_the_same_interval(trained_distribution, tmp_path):
  from jaxface import Predictor, export

  face = Image.fromarray(np.random.default_rng(2).integers(0, 256, (200, 200, 3), dtype=np.uint8))
  (rec,) = Predictor.from_workdir(trained_distribution, detect=False).predict(face)
  assert export.main(["--workdir", str(trained_distribution), "--out", str(tmp_path / "m.jaxface")]) == 0
  (got,) = Predictor.from_export(tmp_path / "m.jaxface", detect=False).predict(face)
  for k in ("age", "age_low", "age_high", "p_female"):
    assert got[k] == pytest.approx(rec[k], abs=0.011)


def test_plot_draws_the_interval_figure(trained_distribution, tmp_path):
  from jaxface import figures

  made = figures.plot([trained_distribution], tmp_path, "validation")
  assert (tmp_path / "age_intervals.png") in made and (tmp_path / "age_intervals.png").stat().st_size > 10_000


def _csv(path):
  import csv

  with open(path) as f:
    return list(csv.DictReader(f))
