"""The trainer's two input paths (--input device and stream): the examples each sees, evaluation's syncs, auto."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import restored_params, tiny_cfg

from jaxface import config as config_lib
from jaxface import metrics
from jaxface.training import trainer


@pytest.mark.parametrize("mode", ["stream", "device"])
def test_validation_sums_on_the_device_and_syncs_once(trained, monkeypatch, mode):
  """Evaluation adds each batch's sums on the device: one device_get for the whole split, no implicit sync."""
  from jaxface import sharding
  from jaxface.data import arrays, prepare
  from jaxface.inference import restore
  from jaxface.training import feeds, model_def, steps

  cfg = config_lib.Config.load(trained)
  r = restore.load(trained, "last")
  mdef = model_def.ModelDef(r.graphdef, r.graphdef, model_def.image_inputs(False))
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
  stream = feeds.StreamFeed(src, src, train_step=train_step, epochs=2, **kw)
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
  # A killed run's leftover, under the name this process would have used when names were made of the PID
  # (a container reuses PIDs): it must not block the cache.
  (path.parent / f".{path.name}.{os.getpid()}.tmp").mkdir(parents=True, exist_ok=True)
  first = arrays.load(b, "train")
  assert path.exists()
  assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp") and str(os.getpid()) not in p.name]
  again = arrays.load(b, "train")
  src = b.as_data_source("train")
  for k in ("image", "age", "gender"):
    np.testing.assert_array_equal(first[k], again[k])
    np.testing.assert_array_equal(first[k][3], src[3][k])


def test_processes_with_unequal_device_counts_are_refused():
  """Each process feeds an equal share of every batch: 2 devices beside 1 cannot be one data mesh."""
  import types

  from jaxface import sharding

  devices = [types.SimpleNamespace(id=i, process_index=p) for i, p in enumerate([0, 0, 1])]
  with pytest.raises(ValueError, match=r"unequal numbers of devices \(process 0: 2, process 1: 1\)"):
    sharding.data_mesh(devices)
  assert sharding.data_mesh(jax.devices()).devices.size == len(jax.devices())
