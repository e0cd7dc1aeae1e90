"""The trainer end to end on the tiny generated archive ("runlocal")."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import TINY_WIDTHS as TINY
from conftest import tiny_cfg

from jaxface import config as config_lib
from jaxface import metrics, xla_options
from jaxface import train as train_cli
from jaxface.training import losses, trainer


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory, fake_archive):
  d = tmp_path_factory.mktemp("tfds_train")
  from jaxface.data import prepare

  prepare.prepare(fake_archive[0], "full", 32, d)
  return d


def restored_params(workdir: Path, step: int):
  with ocp.CheckpointManager(Path(workdir, "checkpoints").absolute()) as m:
    r = m.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return r["state"]["params"]


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
  """On the tiny set (48 examples: epochs are noisy), 12 epochs must cut the training loss well below its first."""
  cfg = tiny_cfg(fake_archive[0], tfds_dir, epochs=12, lr=1e-2, augment=False, dropout=0.0, input=mode)
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


def _run_devices(
  n: int, workdir: Path, archive, tfds_dir, batch: int = 8, mode: str = "auto"
) -> subprocess.CompletedProcess:
  env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}", "JAX_PLATFORMS": "cpu"}
  args = ["--arch", "custom", "--data", str(archive), "--config", "full", "--tfds-dir", str(tfds_dir), "--image-size", "32",
          "--batch-size", str(batch), "--epochs", "1", "--workdir", str(workdir), "--devices", "cpu"]  # fmt: skip
  args += ["--widths", json.dumps(TINY), "--hidden", "16", "--input", mode]
  return subprocess.run([sys.executable, "-m", "jaxface.train", *args], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("mode", ["stream"])  # --input device: tests/test_multihost.py (1, 4 and 2x2 devices)
def test_four_devices_match_one(tmp_path, fake_archive, tfds_dir, mode):
  runs = {}
  for n in (1, 4):
    out = _run_devices(n, tmp_path / f"d{n}", fake_archive[0], tfds_dir, mode=mode)
    assert out.returncode == 0, out.stderr[-3000:]
    runs[n] = json.loads((tmp_path / f"d{n}" / "run.json").read_text())
  assert runs[4]["device"]["count"] == 4 and runs[1]["device"]["count"] == 1
  assert runs[4]["input"] == runs[1]["input"] == mode
  a, b = runs[1]["final"], runs[4]["final"]
  for key in ("train_loss", "val_loss", "val_age_mae", "val_gender_acc"):
    assert a[key] == pytest.approx(b[key], rel=1e-4), key


def test_batch_must_divide_over_devices(tmp_path, fake_archive, tfds_dir):
  out = _run_devices(4, tmp_path, fake_archive[0], tfds_dir, batch=6)
  assert out.returncode == 1
  assert "batch size 6 does not divide over 4 devices" in out.stderr


def test_presets_fill_and_flags_win():
  cpu = config_lib.make("custom", "cpu")
  assert cpu.image_size == 64 and cpu.preset == "cpu" and cpu.epochs == 50 and cpu.lr_schedule == "cosine"
  assert config_lib.make("custom", "cpu", image_size=96, epochs=None).image_size == 96
  classic = config_lib.make("resnet50")
  assert (classic.epochs, classic.batch_size, classic.image_size, classic.lr) == (50, 64, 128, 1e-3)
  assert (classic.age_loss_weight, classic.gender_loss_weight) == (0.1, 1.0)
  with pytest.raises(ValueError, match="unknown preset"):
    config_lib.make("custom", "gpu")


def test_mobilenet_v2_fine_tunes_every_layer_with_a_lower_backbone_lr(tmp_path, fake_archive, tfds_dir):
  """The cpu preset's recipe: the whole backbone trains (no frozen layers), at a fraction of the heads' LR."""
  from jaxface.training import steps

  cfg = config_lib.make(
    "mobilenet_v2", "classic", data=str(fake_archive[0]), dataset="full", tfds_dir=str(tfds_dir), image_size=32,
    batch_size=8, epochs=1, backbone_lr_scale=0.1, hidden=(16,), log_every=3,
  )  # fmt: skip
  trainer.train(cfg, tmp_path)
  _, init, _ = steps.init_model(cfg)
  init = {k: np.asarray(v) for k, v in nnx_flat(init)}
  after = {k: np.asarray(v) for k, v in nnx_flat(restored_params(tmp_path, 6))}
  assert init.keys() == after.keys()
  first, last = ("backbone", "features", 0, 0, "kernel"), ("backbone", "features", 18, 0, "kernel")
  assert not np.allclose(init[first], after[first]) and not np.allclose(init[last], after[last])
  h = json.loads((tmp_path / "history.json").read_text())
  assert len(h) == 1 and np.isfinite(h[0]["val_loss"]) and h[0]["lr"] > 0


def test_a_workdir_of_the_retired_frozen_prefix_evaluates_but_does_not_resume(tmp_path):
  """--freeze-until is gone: an old config.json still loads (inference), but resuming it is refused, saying why."""
  old = json.loads(config_lib.make("mobilenet_v2").to_json())
  (tmp_path / "config.json").write_text(json.dumps({**old, "freeze_until": 14}))
  assert config_lib.Config.load(tmp_path).arch == "mobilenet_v2"
  with pytest.raises(ValueError, match="--freeze-until 14.*cannot be resumed"):
    trainer.train(config_lib.make("mobilenet_v2"), tmp_path)


def nnx_flat(tree):
  """(path tuple with int list indices, array) pairs of a params tree, restored or live."""
  out = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    key = tuple(int(p.key) if str(p.key).isdigit() else p.key for p in path if hasattr(p, "key"))
    out.append((key[:-1] if key[-1] == "value" else key, leaf))  # restored Variables carry a 'value' level
  return out


def test_resnet50_short_run_on_cpu(tmp_path, fake_archive, tfds_dir):
  """A few ResNet-50 steps on the CPU, at 32 px: the full network trains and evaluates."""
  cfg = config_lib.make(
    "resnet50", "cpu", data=str(fake_archive[0]), dataset="full", tfds_dir=str(tfds_dir), image_size=32,
    batch_size=8, epochs=1, hidden=(16,), log_every=3,
  )  # fmt: skip
  last = trainer.train(cfg, tmp_path)
  assert last["step"] == 6 and np.isfinite(last["train_loss"]) and np.isfinite(last["val_age_mae"])


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
  monkeypatch.delenv("JAXFACE_DATA", raising=False)
  rc = train_cli.main(["--arch", "custom", "--workdir", str(tmp_path / "w"), "--tfds-dir", str(tmp_path / "empty")])
  err = capsys.readouterr().err
  assert rc == 1 and "UTKFace.tar.gz" in err and "JAXFACE_DATA" in err


def test_cosine_horizon_is_fixed_when_a_run_starts(tmp_path, fake_archive, tfds_dir):
  """Resuming never moves the LR schedule: a planned run stopped and extended equals the straight run."""
  cos = dict(lr_schedule="cosine", warmup_epochs=1)
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=4, **cos), tmp_path / "straight")
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2, lr_horizon_epochs=4, **cos), tmp_path / "resumed")
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=4, **cos), tmp_path / "resumed")  # horizon kept: 4
  ha = json.loads((tmp_path / "straight" / "history.json").read_text())
  hb = json.loads((tmp_path / "resumed" / "history.json").read_text())
  assert [h["lr"] for h in hb] == pytest.approx([h["lr"] for h in ha], rel=1e-6)
  assert ha[-1]["lr"] < 1e-2 * max(h["lr"] for h in ha)  # decayed to ~0 at the horizon
  a, b = restored_params(tmp_path / "straight", 24), restored_params(tmp_path / "resumed", 24)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a, b)
  assert config_lib.Config.load(tmp_path / "resumed").lr_horizon_epochs == 4
  # A finished cosine run cannot be extended past its horizon: its LR would jump back up from 0.
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2, **cos), tmp_path / "short")
  with pytest.raises(ValueError, match="past the cosine schedule's horizon of 2 epochs"):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=3, **cos), tmp_path / "short")


@pytest.mark.parametrize("mode", ["stream", "device"])
def test_validation_sums_on_the_device_and_syncs_once(trained, monkeypatch, mode):
  """Evaluation adds each batch's sums on the device: one device_get for the whole split, no implicit sync."""
  from jaxface import sharding
  from jaxface.data import arrays, prepare
  from jaxface.inference import restore
  from jaxface.training import feeds, steps

  cfg = config_lib.Config.load(trained)
  r = restore.load(trained, "last")
  mdef = steps.ModelDef(r.graphdef, r.graphdef, steps.image_inputs(False))
  mesh = sharding.data_mesh(jax.devices())
  eval_step = steps.make_eval_step(mdef, cfg)
  state = {"params": r.params, "batch_stats": r.batch_stats}
  b = prepare.prepare(None, cfg.dataset, cfg.image_size, cfg.tfds_dir)
  kw = dict(train_step=None, mesh=mesh, batch_size=4, seed=0)
  if mode == "stream":
    feed = feeds.StreamFeed(
      b.as_data_source("train"), b.as_data_source("validation"), epochs=1, **kw, eval_step=jax.jit(eval_step)
    )
  else:
    feed = feeds.DeviceFeed(
      arrays.load(b, "train"),
      arrays.load(b, "validation"),
      steps_per_call=0,
      compiler_options=None,
      eval_step=eval_step,
      **kw,
    )
  calls = []
  real = jax.device_get
  monkeypatch.setattr(jax, "device_get", lambda x: calls.append(1) or real(x))
  with jax.transfer_guard_device_to_host("disallow"):
    m = metrics.from_sums(jax.device_get(feed.evaluate(state)))  # 7 examples: 2 batches of 4, the last padded
  assert len(calls) == 1 and m["n"] == 7
  last = json.loads((trained / "history.json").read_text())[-1]
  assert m["age_mae"] == pytest.approx(last["val_age_mae"], rel=1e-5)


def _seen_per_example(feed, n: int, epoch: int) -> np.ndarray:
  """How often each example (its age is its index) reached the train step in one epoch."""
  state = {"seen": jnp.zeros(n, jnp.int32)}
  done = 0
  while done < feed.steps_per_epoch:
    k = min(feed.steps_per_call, feed.steps_per_epoch - done)
    state, _, _ = feed.run(state, epoch, done, k)
    done += k
  return np.asarray(state["seen"])


@pytest.mark.parametrize("n", [40, 43])  # a whole number of batches, and a remainder left out
def test_device_and_stream_see_the_same_examples_once_per_epoch(n):
  from jaxface import sharding
  from jaxface.training import feeds

  def train_step(state, batch):
    return {"seen": state["seen"].at[batch["age"]].add(1)}, {"n": jnp.float32(len(batch["age"]))}

  src = [{"image": np.zeros((2, 2, 3), np.uint8), "age": i, "gender": i % 2} for i in range(n)]
  arrs = {k: np.stack([np.asarray(e[k]) for e in src]) for k in ("image", "age", "gender")}
  mesh = sharding.data_mesh(jax.devices())
  kw = dict(mesh=mesh, batch_size=8, seed=0, eval_step=None)
  stream = feeds.StreamFeed(src, src, train_step=jax.jit(train_step), epochs=2, **kw)
  device = feeds.DeviceFeed(arrs, arrs, train_step=train_step, steps_per_call=2, compiler_options=None, **kw)
  assert stream.steps_per_epoch == device.steps_per_epoch == n // 8
  for epoch in (0, 1):
    a, b = _seen_per_example(stream, n, epoch), _seen_per_example(device, n, epoch)
    assert a.max() == b.max() == 1 and a.sum() == b.sum() == n // 8 * 8  # each at most once; all when 8 divides n
  epochs = [_seen_per_example(device, n, e) for e in (0, 1)]
  if n % 8:
    assert not np.array_equal(*epochs)  # a new order (and left-out remainder) each epoch


def test_steps_per_call_do_not_change_the_result(tmp_path, fake_archive, tfds_dir):
  """A whole epoch per jitted call equals one step per call (float tolerance)."""
  for k in (1, 0):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, input="device", steps_per_call=k), tmp_path / f"k{k}")
  a, b = restored_params(tmp_path / "k1", 12), restored_params(tmp_path / "k0", 12)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a, b)
  assert json.loads((tmp_path / "k0" / "run.json").read_text())["input"] == "device"


def test_auto_input_falls_back_to_stream_over_budget(tmp_path, fake_archive, tfds_dir, caplog):
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=1, input="auto", input_budget_mb=0.01), tmp_path / "s")
  assert json.loads((tmp_path / "s" / "run.json").read_text())["input"] == "stream"
  assert "over the device-input budget of 0.0 MB" in caplog.text
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=1, input="auto"), tmp_path / "d")
  assert json.loads((tmp_path / "d" / "run.json").read_text())["input"] == "device"
  # A device-input run has no iterator position to resume a stream from: a clear refusal.
  with pytest.raises(ValueError, match="trained with --input device; resume it with --input device"):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2, input="stream"), tmp_path / "d")


def test_a_stream_checkpoint_of_another_process_count_is_refused(tmp_path, fake_archive, tfds_dir):
  """Each process's stream position is its own: a run of another process count cannot take them over."""
  trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=1, input="stream"), tmp_path)
  data = tmp_path / "checkpoints" / "6" / "data"
  (saved,) = data.glob("process_*-of-*.json")
  saved.rename(data / "process_0-of-2.json")  # as if 2 processes had saved it
  shutil.copy(data / "process_0-of-2.json", data / "process_1-of-2.json")
  with pytest.raises(ValueError, match="position of each of 2 processes, and this run has 1"):
    trainer.train(tiny_cfg(fake_archive[0], tfds_dir, epochs=2, input="stream"), tmp_path)


def test_arrays_are_read_once_and_cached(fake_full):
  from jaxface.data import arrays

  b, _ = fake_full
  path = arrays.cache_path(b, "train")
  shutil.rmtree(path, ignore_errors=True)
  first = arrays.load(b, "train")
  assert path.exists()
  again = arrays.load(b, "train")
  src = b.as_data_source("train")
  for k in ("image", "age", "gender"):
    np.testing.assert_array_equal(first[k], again[k])
    np.testing.assert_array_equal(first[k][3], src[3][k])
