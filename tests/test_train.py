"""The trainer end to end on the tiny generated archive ("runlocal")."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_WIDTHS as TINY
from conftest import assert_within_spread, relative_differences, restored_params, tiny_cfg, xla_flags
from flax import nnx

from jaxface import config as config_lib
from jaxface import models
from jaxface import train as train_cli
from jaxface.training import losses, trainer
from jaxface.xla import malloc
from jaxface.xla import options as xla_options


def test_runlocal_outputs(tmp_path, fake_archive, tfds_dir):
  cfg = tiny_cfg(fake_archive[0], tfds_dir)
  last = trainer.train(cfg, tmp_path)
  history = json.loads((tmp_path / "history.json").read_text())
  assert [h["epoch"] for h in history] == [1, 2] and [h["step"] for h in history] == [6, 12]
  for key in (
    "train_loss",
    "val_loss",
    "train_age_mae",
    "val_age_mae",
    "train_gender_acc",
    "val_gender_acc",
    "lr",
    "epoch_time_s",
    "images_per_s",
    "input_wait_frac",
  ):
    assert all(np.isfinite(h[key]) for h in history), key
  assert last == history[-1]
  assert config_lib.Config.load(tmp_path) == dataclasses.replace(cfg, lr_horizon_epochs=2)  # the horizon, recorded
  run = json.loads((tmp_path / "run.json").read_text())
  assert run["device"]["platform"] == "cpu" and run["epochs_done"] == 2 and "git_commit" in run
  assert run["xla_compiler_options"] == xla_options.compiler_options("cpu")  # what the steps were compiled with
  assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [6, 12]
  # A rerun with the same workdir finds the run complete and trains nothing more.
  trainer.train(cfg, tmp_path)
  assert json.loads((tmp_path / "history.json").read_text()) == history


@pytest.mark.parametrize("mode", ["device", "stream"])
def test_training_learns(tmp_path, fake_archive, tfds_dir, mode):
  """On the tiny set (48 examples: epochs are noisy), 12 epochs must cut the training loss well below its first.

  At lr 1e-2 the curve was chaotic: a change in float rounding alone left one run on a plateau. At 3e-3 both
  modes fall to a fifth or a quarter of the first loss, before and after that change."""
  cfg = tiny_cfg(fake_archive[0], tfds_dir, epochs=12, lr=3e-3, augment=False, dropout=0.0, input=mode)
  trainer.train(cfg, tmp_path)
  h = json.loads((tmp_path / "history.json").read_text())
  assert min(e["train_loss"] for e in h[-3:]) < 0.7 * h[0]["train_loss"]


@pytest.mark.parametrize("mode", ["device", "stream"])
def test_resume_equals_straight_run(tmp_path, fake_archive, tfds_dir, mode):
  straight = tiny_cfg(fake_archive[0], tfds_dir, epochs=4, input=mode)
  trainer.train(straight, tmp_path / "straight")
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2, input=mode), tmp_path / "resumed")
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=4, input=mode), tmp_path / "resumed")
  a, b = restored_params(tmp_path / "straight", 24), restored_params(tmp_path / "resumed", 24)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a, b)
  ha = json.loads((tmp_path / "straight" / "history.json").read_text())
  hb = json.loads((tmp_path / "resumed" / "history.json").read_text())
  assert [h["val_loss"] for h in ha] == pytest.approx([h["val_loss"] for h in hb], rel=1e-5)


def test_keeps_last_two_and_best(tmp_path, fake_archive, tfds_dir):
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=5), tmp_path)
  h = json.loads((tmp_path / "history.json").read_text())
  best = min(h, key=lambda e: e["val_age_mae"])["step"]
  kept = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert kept == sorted({24, 30, best})


def test_other_config_in_workdir_is_refused(tmp_path, fake_archive, tfds_dir):
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=1), tmp_path)
  with pytest.raises(ValueError, match="another config.*lr"):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=1, lr=0.5), tmp_path)


def test_non_finite_loss_stops_and_keeps_checkpoint(tmp_path, fake_archive, tfds_dir, monkeypatch):
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=1), tmp_path)
  real = losses.joint
  monkeypatch.setattr(losses, "joint", lambda *a, **k: (lambda loss, s: (loss * jnp.nan, s))(*real(*a, **k)))
  with pytest.raises(trainer.NonFiniteLossError, match="not finite at step 6 .*last good checkpoint is step 6"):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2), tmp_path)
  assert len(json.loads((tmp_path / "history.json").read_text())) == 1
  assert restored_params(tmp_path, 6) is not None


def _start_devices(n: int, workdir: Path, archive, tfds_dir, batch: int = 8, mode: str = "auto") -> subprocess.Popen:
  env = {**os.environ, "XLA_FLAGS": xla_flags(n), "JAX_PLATFORMS": "cpu"}
  args = ["--arch", "custom", "--data", str(archive), "--config", "full", "--tfds-dir", str(tfds_dir), "--image-size", "32",
          "--batch-size", str(batch), "--epochs", "1", "--workdir", str(workdir), "--devices", "cpu"]  # fmt: skip
  args += ["--widths", json.dumps(TINY), "--hidden", "16", "--input", mode]
  cmd = [sys.executable, "-m", "jaxface.train", *args]
  return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _run_devices(n: int, workdir: Path, archive, tfds_dir, batch: int = 8, mode: str = "auto"):
  """The run, finished: (its exit code, its stderr)."""
  p = _start_devices(n, workdir, archive, tfds_dir, batch, mode)
  _, err = p.communicate(timeout=600)
  return p.returncode, err


@pytest.mark.parametrize("mode", ["stream"])  # --input device: tests/test_multihost.py (1 x 2, 1 x 4 and 2 x 2)
def test_four_devices_match_one(tmp_path, fake_archive, tfds_dir, mode):
  """4 devices end as close to 1 device as 2 devices do (conftest.assert_within_spread): the sums' order differs
  with the device count, and nothing else may."""
  runs = {}
  procs = {n: _start_devices(n, tmp_path / f"d{n}", fake_archive[0], tfds_dir, mode=mode) for n in (1, 2, 4)}
  for n, p in procs.items():  # side by side: each is mostly its own start and compile
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    runs[n] = json.loads((tmp_path / f"d{n}" / "run.json").read_text())
  assert [runs[n]["device"]["count"] for n in (1, 2, 4)] == [1, 2, 4]
  assert {runs[n]["input"] for n in runs} == {mode}
  if malloc.glibc():  # the verb started itself again with huge pages for XLA's buffers (jaxface.xla.malloc)
    assert all("glibc.malloc.hugetlb=1" in r["machine"]["allocator"]["glibc_tunables"] for r in runs.values())
  keys = ("train_loss", "val_loss", "val_age_mae", "val_gender_bce")
  final = {n: r["final"] for n, r in runs.items()}
  assert_within_spread(
    relative_differences(final[4], final[1], keys), relative_differences(final[2], final[1], keys), "4 against 1"
  )


def test_batch_must_divide_over_devices(tmp_path, fake_archive, tfds_dir):
  rc, err = _run_devices(4, tmp_path, fake_archive[0], tfds_dir, batch=6)
  assert rc == 2 and "batch size 6 does not divide over 4 devices" in err


def test_presets_fill_and_flags_win():
  cpu = config_lib.make("custom", "cpu")
  assert cpu.image_size == 64 and cpu.preset == "cpu" and cpu.epochs == 50 and cpu.lr_schedule == "cosine"
  assert config_lib.make("custom", "cpu", image_size=96, epochs=None).image_size == 96
  classic = config_lib.make("resnet50")
  assert (classic.epochs, classic.batch_size, classic.image_size, classic.lr) == (50, 64, 128, 1e-3)
  assert (classic.age_loss_weight, classic.gender_loss_weight) == (0.1, 1.0)
  with pytest.raises(ValueError, match="unknown preset"):
    config_lib.make("custom", "gpu")


def test_hidden_flag_alone_gives_linear_heads():
  """``--hidden`` with no widths is an empty tuple: each head is one linear layer over the features."""
  parser = argparse.ArgumentParser()
  config_lib.add_flags(parser)
  cfg = config_lib.from_flags(parser.parse_args(["--arch", "mobilenet_v2", "--preset", "cpu", "--hidden"]))
  assert cfg.hidden == () and config_lib.Config.from_dict(json.loads(cfg.to_json())).hidden == ()
  model = nnx.eval_shape(
    lambda: models.get_model("mobilenet_v2", image_size=32, hidden=cfg.hidden, age_head=cfg.age_head)
  )
  assert len(model.heads.age.layers) == 0 and model.heads.age.out.kernel.shape == (1280, 117)
  assert config_lib.make("mobilenet_v2", "cpu").hidden == (128,)


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
  monkeypatch.delenv("JAXFACE_DATA", raising=False)
  rc = train_cli.main(["--arch", "custom", "--workdir", str(tmp_path / "w"), "--tfds-dir", str(tmp_path / "empty")])
  err = capsys.readouterr().err
  assert rc == 2 and "UTKFace.tar.gz" in err and "JAXFACE_DATA" in err


def test_cosine_horizon_is_fixed_when_a_run_starts(tmp_path, fake_archive, tfds_dir):
  """Resuming never moves the LR schedule: a planned run stopped and extended equals the straight run."""
  cos = dict(lr_schedule="cosine", warmup_epochs=1)
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=3, **cos), tmp_path / "straight")
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2, lr_horizon_epochs=3, **cos), tmp_path / "resumed")
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=3, **cos), tmp_path / "resumed")  # horizon kept: 3
  ha = json.loads((tmp_path / "straight" / "history.json").read_text())
  hb = json.loads((tmp_path / "resumed" / "history.json").read_text())
  assert [h["lr"] for h in hb] == pytest.approx([h["lr"] for h in ha], rel=1e-6)
  assert ha[-1]["lr"] < 5e-2 * max(h["lr"] for h in ha)  # decayed to near 0 at the horizon
  a, b = restored_params(tmp_path / "straight", 18), restored_params(tmp_path / "resumed", 18)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a, b)
  assert config_lib.Config.load(tmp_path / "resumed").lr_horizon_epochs == 3
  # A finished cosine run cannot be extended past its horizon: its LR would jump back up from 0.
  finished = json.loads(tiny_cfg(fake_archive[0], tfds_dir, epochs=2, lr_horizon_epochs=2, **cos).to_json())
  with pytest.raises(ValueError, match="past the cosine schedule's horizon of 2 epochs"):
    config_lib.for_run(tiny_cfg(fake_archive[0], tfds_dir, epochs=3, **cos), finished, tmp_path / "short")
  with pytest.raises(ValueError, match="past the cosine schedule's horizon of 3 epochs"):  # and through the trainer
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=4, **cos), tmp_path / "straight")
