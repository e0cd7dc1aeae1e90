"""Inference from a workdir: the weights alone, on this process's devices, whatever devices trained them."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import TINY_WIDTHS, xla_flags

from jaxface import Predictor
from jaxface.inference import InferenceModel, evaluation, restore


@pytest.fixture(scope="module")
def trained_on_4(tmp_path_factory, fake_archive):
  """A tiny custom CNN trained 1 epoch on 4 fake CPU devices, in its own process."""
  wd, tfds_dir = tmp_path_factory.mktemp("trained4"), tmp_path_factory.mktemp("tfds4")
  env = {**os.environ, "XLA_FLAGS": xla_flags(4), "JAX_PLATFORMS": "cpu"}
  args = ["--arch", "custom", "--data", str(fake_archive[0]), "--dataset", "full", "--tfds-dir", str(tfds_dir),
          "--image-size", "32", "--batch-size", "8", "--epochs", "1", "--widths", json.dumps(TINY_WIDTHS),
          "--hidden", "16", "--workdir", str(wd)]  # fmt: skip
  out = subprocess.run([sys.executable, "-m", "jaxface.train", *args], env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-3000:]
  assert json.loads((wd / "run.json").read_text())["device"]["count"] == 4
  return wd


def test_trained_on_4_devices_evaluates_and_predicts_on_1(trained_on_4):
  assert jax.device_count() == 1
  r = evaluation.evaluate(trained_on_4, "validation")
  last = json.loads((trained_on_4 / "history.json").read_text())[-1]
  assert r["n"] == 7 and r["age_mae"] == pytest.approx(last["val_age_mae"], rel=1e-4)
  face = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
  recs = Predictor.from_workdir(trained_on_4, detect=False, batch_size=2).predict(face)
  assert len(recs) == 1 and recs[0]["status"] == "ok" and np.isfinite(recs[0]["age"])


def test_restore_reads_weights_only(trained):
  r = restore.load(trained, "last")
  assert r.step == json.loads((trained / "history.json").read_text())[-1]["step"]
  leaves = jax.tree.leaves((r.params, r.batch_stats))
  assert leaves and all(isinstance(x, jax.Array) and x.sharding.device_set == {jax.devices()[0]} for x in leaves)
  with pytest.raises(ValueError, match="checkpoint must be one of"):
    restore.load(trained, "first")


def test_best_is_the_lowest_validation_mae(trained):
  history = json.loads((trained / "history.json").read_text())
  assert restore.load(trained, "best").step == min(history, key=lambda h: h["val_age_mae"])["step"]


def test_one_compilation_per_batch_shape(trained):
  model = InferenceModel(restore.load(trained, "last"))
  x = np.zeros((4, 32, 32, 3), np.uint8)
  a = jax.device_get(model(x))
  model(x + 1)
  assert model._fn._cache_size() == 1
  model(np.zeros((2, 32, 32, 3), np.uint8))
  assert model._fn._cache_size() == 2
  assert a["age"].shape == (4,)


def test_flip_tta_averages_the_image_and_its_mirror(trained):
  model = InferenceModel(restore.load(trained, "last"))
  x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), np.uint8)
  plain, mirrored = jax.device_get(model(x)), jax.device_get(model(x[:, :, ::-1]))
  flip = jax.device_get(InferenceModel(model.restored, tta="flip")(x))
  assert np.abs(plain["age"] - mirrored["age"]).max() > 1e-3  # the mirror is another input
  for k in ("age", "p_female"):
    np.testing.assert_allclose(flip[k], (plain[k] + mirrored[k]) / 2, rtol=1e-5, atol=1e-6)


def test_predictor_pads_a_small_batch_to_the_next_shape_only(trained):
  """3 crops run as a batch of 4, not of the batch size; the rows equal those of a full batch."""

  p = Predictor.from_workdir(trained, batch_size=8)
  assert p.shapes == [1, 2, 4, 8]
  crops = np.random.default_rng(0).integers(0, 256, (11, 32, 32, 3), np.uint8)
  whole = p.run(crops)  # a batch of 8, then 3 padded to 4
  assert p.model._fn._cache_size() == 2
  for n in (1, 3):
    part = p.run(crops[:n])
    for k in ("age", "p_female"):
      np.testing.assert_allclose(part[k], whole[k][:n], rtol=1e-5, atol=1e-5)
  assert p.model._fn._cache_size() == 3  # 1 and 4 (3 padded): no new shape for 3
