"""The training loop: a jitted, data-parallel step over every device of the chosen platform.

Batches come from one of two feeds (``feeds``): the splits resident on the
device, many steps per call, or streamed from the host by grain.

The workdir receives config.json (all evaluation needs), history.json (one
entry per epoch), checkpoints/ (the last two and the best by validation age
MAE), and run.json (command, commit, device, wall time). Training the same
workdir again resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from jaxface import checkpoint, files, metrics, provenance, sharding
from jaxface import config as config_lib
from jaxface.data import arrays, pipeline, prepare
from jaxface.training import feeds, guard, model_def, optimizer, steps, workdir_lock
from jaxface.xla import options as xla_options


class NonFiniteLossError(FloatingPointError):
  pass


def _write_config(cfg: config_lib.Config, workdir: Path) -> config_lib.Config:
  """Writes config.json, or checks a resumed run against it (``config.for_run``); returns the config the run uses."""
  path = workdir / "config.json"
  written = None
  if path.exists():
    try:
      written = json.loads(path.read_text())
    except ValueError as e:
      raise ValueError(f"{path}: not a jaxface config ({e})") from None
  cfg = config_lib.for_run(cfg, written, workdir)
  if jax.process_index() == 0:
    files.write_text(path, cfg.to_json())
  return cfg


def train(cfg: config_lib.Config, workdir: str | Path, *, restart_if_damaged: bool = False) -> dict:
  """Trains (or resumes) ``cfg`` in ``workdir``; returns the last history entry.

  The workdir is locked for the run (a second run on it is refused, naming
  this one). Every exit, an error or an interrupt included, waits for the
  checkpoint being saved. When every checkpoint in the workdir is damaged,
  the run starts from scratch only with ``restart_if_damaged``.
  """
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  with workdir_lock.hold(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
    return _train(cfg, workdir, restart_if_damaged)


def _train(cfg: config_lib.Config, workdir: Path, restart_if_damaged: bool) -> dict:
  t_start = time.perf_counter()
  run = provenance.record()  # commit and date as the run starts; wall time added at the end
  cfg = _write_config(cfg, workdir)
  primary = jax.process_index() == 0

  # --- mesh --------------------------------------------------------------
  devices = sharding.select_devices(cfg.devices)
  mesh = sharding.data_mesh(devices)
  sharding.check_batch_divides(cfg.batch_size, mesh)
  repl = sharding.replicated(mesh)
  logging.info("Devices: %d x %s (%d processes)", len(devices), devices[0].device_kind, jax.process_count())
  xla_opts = run["xla_compiler_options"] = xla_options.compiler_options(devices[0].platform)
  if xla_opts:
    logging.info("XLA compiler options: %s", xla_opts)

  # --- input, model, optimizer, steps -------------------------------------
  builder, train_src, val_src, weighted = _input(cfg)
  mdef, params, batch_stats = model_def.init_model(cfg)
  mode = feeds.resolve(
    cfg.input, feeds.split_bytes(train_src) + feeds.split_bytes(val_src), devices[0], cfg.input_budget_mb
  )
  run["input"] = mode
  steps_per_epoch = pipeline.steps_per_epoch(
    len(train_src) // jax.process_count() * jax.process_count(), cfg.batch_size
  )
  tx = optimizer.from_config(cfg, steps_per_epoch)
  state = jax.device_put(steps.init_state(params, batch_stats, tx, cfg.seed), repl)
  feed = feeds.make(
    mode, builder, train_src, val_src, cfg, weighted=weighted, fields=pipeline.train_fields(builder), mesh=mesh,
    train_step=steps.make_train_step(mdef, tx, cfg), eval_step=steps.make_eval_step(mdef, cfg),
    compiler_options=xla_opts,
  )  # fmt: skip
  if feed.steps_per_epoch != steps_per_epoch:  # the optimizer's schedule was built for steps_per_epoch
    raise RuntimeError(f"the {mode} input has {feed.steps_per_epoch} steps per epoch, the schedule {steps_per_epoch}")
  logging.info("Input: %s, %d steps per epoch, %d per call", mode, steps_per_epoch, feed.steps_per_call)

  with checkpoint.Checkpointer(workdir / "checkpoints") as ckpt:  # waits for the save in flight, whatever ends the run
    # --- checkpoint restore ------------------------------------------------
    history: list[dict] = []
    start_epoch = 0
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl), state)
    if (restored := ckpt.restore_latest(abstract, feed.iterator, restart_if_damaged=restart_if_damaged)) is not None:
      last, state, meta = restored
      start_epoch = meta["epoch"]
      history = meta["history"]  # kept with the checkpoint: history.json is an output, rebuilt from it
      logging.info("Resumed from %s at epoch %d (step %d)", ckpt.directory, start_epoch, last)

    # --- loop --------------------------------------------------------------
    for epoch in range(start_epoch, cfg.epochs):
      guard.beat(f"epoch {epoch + 1}, its first steps (compiling)" if epoch == start_epoch else f"epoch {epoch + 1}")
      t0, wait, acc, done = time.perf_counter(), 0.0, None, 0
      bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", primary)
      while done < steps_per_epoch:
        k = min(feed.steps_per_call, steps_per_epoch - done)
        state, acc, waited = feed.run(state, epoch, done, k, acc)
        wait, done = wait + waited, done + k
        if done // cfg.log_every > (done - k) // cfg.log_every or done == steps_per_epoch:
          m = _host_sync(acc, state, ckpt, epoch)
          guard.beat(f"epoch {epoch + 1}, after step {done} of {steps_per_epoch}")
          bar.set_postfix(
            loss=f"{m['loss']:.3f}", mae=f"{m['age_mae']:.2f}", acc=f"{m['gender_acc']:.3f}", refresh=False
          )
        bar.update(k)
      bar.close()
      train_s = time.perf_counter() - t0
      guard.beat(f"epoch {epoch + 1}'s evaluation")
      entry = _history_entry(epoch, state, jax.device_get(acc), jax.device_get(feed.evaluate(state)), t0, train_s,
                             wait, steps_per_epoch * cfg.batch_size)  # fmt: skip
      guard.beat(f"epoch {epoch + 1}'s checkpoint")
      history.append(entry)
      meta = {"epoch": epoch + 1, "history": history}
      ckpt.save(entry["step"], state, feed.iterator, meta, {metrics.BEST_METRIC: entry[metrics.BEST_METRIC]})
      if primary:
        files.write_json(workdir / "history.json", history, indent=1)
        print(_epoch_line(entry, cfg.epochs), flush=True)
    ckpt.wait()
    guard.idle("finishing")
    if primary:
      files.write_json(workdir / "history.json", history, indent=1)  # also when a resume found the run complete
      run.update({"wall_s": round(time.perf_counter() - t_start, 2), "resumed_at_epoch": start_epoch})
      run.update({"workdir": str(workdir), "epochs_done": len(history), "final": history[-1] if history else None})
      files.write_json(workdir / "run.json", run)
    return history[-1] if history else {}


def _input(cfg: config_lib.Config):
  """(builder, train source, validation source, the weighted train indices or None). Process 0 builds the dataset
  (and later the arrays cache); the others wait, then open it."""
  builder = sharding.primary_first(
    lambda: prepare.prepare(cfg.data, cfg.dataset, cfg.image_size, cfg.tfds_dir, crop=cfg.crop),
    "jaxface:dataset-prepared",
  )
  train_src, val_src = builder.as_data_source("train"), builder.as_data_source("validation")
  weighted = None  # the train split's examples, each as often as its source's and its stratum's weights say
  if cfg.source_weights or cfg.balance:
    weighted = _sampling(builder, cfg)
    logging.info(
      "Sampling (source weights %s, balance %s): %d training examples an epoch of %d",
      cfg.source_weights, cfg.balance, len(weighted), len(train_src),
    )  # fmt: skip
    train_src = pipeline.Indexed(train_src, weighted)
  return builder, train_src, val_src, weighted


def _progress(total: int, desc: str, primary: bool) -> tqdm:
  tty = sys.stderr.isatty()
  return tqdm(
    total=total, desc=desc, disable=(None if tty else False) if primary else True, mininterval=0.5 if tty else 30,
    leave=False,
  )  # fmt: skip


def _host_sync(acc, state, ckpt: checkpoint.Checkpointer, epoch: int) -> dict:
  """The epoch's metrics so far, on the host (a sync); a step whose loss was not finite ends the run, naming the last
  good checkpoint."""
  host, bad = jax.device_get((acc, state["first_bad_step"]))
  if bad >= 0:
    ckpt.wait()  # the previous epoch's save lands before we name it
    last = ckpt.latest_step()
    raise NonFiniteLossError(
      f"loss is not finite at step {int(bad)} (epoch {epoch + 1}); training stopped. "
      + (f"The last good checkpoint is step {last} in {ckpt.directory}." if last is not None else "No checkpoint was "
         "saved yet.")
    )  # fmt: skip
  return metrics.from_sums(host)


def _history_entry(epoch: int, state, train_sums, val_sums, t0: float, train_s: float, wait: float, images: int):
  """history.json's entry for the epoch: train and validation metrics, the learning rate, the times."""
  tm, vm = metrics.from_sums(train_sums), metrics.from_sums(val_sums)
  return {
    "epoch": epoch + 1, "step": int(jax.device_get(state["step"])), **metrics.prefixed(metrics.TRAIN, tm),
    **metrics.prefixed(metrics.VAL, vm), "lr": float(jax.device_get(optimizer.current_lr(state["opt_state"]))),
    "epoch_time_s": round(time.perf_counter() - t0, 2), "train_time_s": round(train_s, 2),
    "images_per_s": round(images / train_s, 1), "input_wait_frac": round(wait / train_s, 4),
  }  # fmt: skip


def _epoch_line(e: dict, epochs: int) -> str:
  t, v = metrics.TRAIN, metrics.VAL
  return (
    f"epoch {e['epoch']}/{epochs} step {e['step']}: loss {e[f'{t}_loss']:.3f} mae {e[f'{t}_age_mae']:.2f} acc "
    f"{e[f'{t}_gender_acc']:.3f} | val loss {e[f'{v}_loss']:.3f} mae {e[f'{v}_age_mae']:.2f} acc "
    f"{e[f'{v}_gender_acc']:.3f} | {e['images_per_s']:.0f} img/s, input wait {100 * e['input_wait_frac']:.1f}%, "
    f"{e['epoch_time_s']:.0f}s"
  )


def _sampling(builder, cfg: config_lib.Config) -> np.ndarray:
  """The train split's indices for one epoch, by ``cfg.source_weights`` and ``cfg.balance``."""
  keys = ("source",) * bool(cfg.source_weights) + ("race", "age", "gender") * bool(cfg.balance)
  cols = sharding.primary_first(lambda: arrays.load(builder, "train", keys), "jaxface:sampling-labels-read")
  w = np.ones(len(cols[keys[0]]))
  if cfg.source_weights:
    w *= pipeline.source_weights(cols["source"], cfg.source_weights)
  if cfg.balance:
    w *= pipeline.stratum_weights(cols["race"], cols["age"], cols["gender"], cfg.balance)
  return pipeline.weighted_indices(w, cfg.seed)
