"""python -m jaxface.train --arch custom|resnet50|mobilenet_v2 [--preset classic|cpu] --workdir DIR

Trains on utk_face with a jitted, data-parallel step over every device of the
chosen platform. The workdir receives config.json (all evaluation needs),
history.json (one entry per epoch), checkpoints/ (the last two and the best by
validation age MAE), and run.json (command, commit, device, wall time).
Rerunning with the same workdir resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from jaxface import checkpoint, losses, provenance, sharding, steps, xla_options
from jaxface import config as config_lib
from jaxface.data import feature_cache, pipeline, prepare


class NonFiniteLossError(FloatingPointError):
  pass


def _write_config(cfg: config_lib.Config, workdir: Path) -> None:
  path = workdir / "config.json"
  if path.exists():
    old = json.loads(path.read_text())
    new = json.loads(cfg.to_json())
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)} - config_lib.RESUMABLE_CHANGES
    if changed:
      diff = {k: (old.get(k), new.get(k)) for k in sorted(changed)}
      raise ValueError(f"{workdir} holds a run with another config (was, now): {diff}; use a new --workdir")
  path.write_text(cfg.to_json())


def evaluate_split(eval_step, state, source, batch_size: int, batch_sharding, fields=pipeline.EVAL_FIELDS) -> dict:
  """Metrics over every example of ``source`` (padded last batch, masked)."""
  total = None
  local = batch_size // jax.process_count()
  ds = pipeline.eval_batches(
    source, batch_size=local, shard_index=jax.process_index(), shard_count=jax.process_count(), fields=fields
  )
  for batch in ds:
    sums = eval_step(state, sharding.global_batch(batch, batch_sharding))
    total = sums if total is None else jax.tree.map(np.add, total, sums)
  return losses.finalize(jax.device_get(total))


def train(cfg: config_lib.Config, workdir: str | Path) -> dict:
  """Trains (or resumes) ``cfg`` in ``workdir``; returns the last history entry."""
  t_start = time.perf_counter()
  run = provenance.record()  # commit and date as the run starts; wall time added at the end
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  _write_config(cfg, workdir)

  # --- mesh --------------------------------------------------------------
  devices = sharding.select_devices(cfg.devices)
  mesh = sharding.data_mesh(devices)
  local_batch = sharding.check_batch_size(cfg.batch_size, mesh)
  repl, batch_sh = sharding.replicated(mesh), sharding.batch_sharded(mesh)
  logging.info("Devices: %d x %s (%d processes)", len(devices), devices[0].device_kind, jax.process_count())
  xla_opts = run["xla_compiler_options"] = xla_options.compiler_options(devices[0].platform)
  if xla_opts:
    logging.info("XLA compiler options: %s", xla_opts)

  # --- input -------------------------------------------------------------
  builder = prepare.prepare(cfg.data, cfg.dataset, cfg.image_size, cfg.tfds_dir)
  train_src, val_src = builder.as_data_source("train"), builder.as_data_source("validation")
  steps_per_epoch = pipeline.steps_per_epoch(
    len(train_src) // jax.process_count() * jax.process_count(), cfg.batch_size
  )

  # --- model, optimizer, state --------------------------------------------
  mdef, params, rest = steps.init_model(cfg)
  tx = steps.make_optimizer(cfg, steps_per_epoch)
  state = jax.device_put(steps.init_state(params, rest, tx, cfg.seed), repl)

  train_fields, eval_fields = pipeline.TRAIN_FIELDS, pipeline.EVAL_FIELDS
  if cfg.freeze_until:  # a frozen prefix: its output, computed once, stands in for the images
    prefix = jax.jit(steps.make_prefix(mdef, cfg.freeze_until), compiler_options=xla_opts)
    run_prefix = lambda images: prefix(state["params"], state["rest"], images)
    t = time.perf_counter()
    train_src = feature_cache.build(train_src, run_prefix, batch_size=cfg.batch_size, mirror=True, desc="caching train")
    val_src = feature_cache.build(
      val_src, run_prefix, batch_size=cfg.batch_size, mirror=False, desc="caching validation"
    )
    logging.info(
      "Cached backbone layers 0-%d of %d images in %.0fs",
      cfg.freeze_until - 1,
      len(train_src) + len(val_src),
      time.perf_counter() - t,
    )
    train_fields, eval_fields = ("feats", "age", "gender"), ("feats", *feature_cache.LABEL_FIELDS)
  train_ds = pipeline.train_dataset(
      train_src, batch_size=local_batch, seed=cfg.seed, num_epochs=cfg.epochs,
      shard_index=jax.process_index(), shard_count=jax.process_count(), fields=train_fields,
  )  # fmt: skip
  train_iter = pipeline.iterate(train_ds)

  # --- steps -------------------------------------------------------------
  train_step = jax.jit(
    steps.make_train_step(mdef, tx, cfg), in_shardings=(repl, batch_sh), out_shardings=(repl, repl),
    donate_argnums=(0,), compiler_options=xla_opts,
  )  # fmt: skip
  eval_step = jax.jit(
    steps.make_eval_step(mdef, cfg), in_shardings=(repl, batch_sh), out_shardings=repl, compiler_options=xla_opts
  )

  # --- checkpoint restore --------------------------------------------------
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints")
  history_path = workdir / "history.json"
  history: list[dict] = []
  start_epoch = 0
  if (last := ckpt.latest_step()) is not None:
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl), state)
    state, data_state = ckpt.restore(last, abstract)
    train_iter.set_state(data_state["train_iter"])
    start_epoch = data_state["epoch"]
    history = (
      [h for h in json.loads(history_path.read_text()) if h["epoch"] <= start_epoch] if history_path.exists() else []
    )
    logging.info("Resumed from %s at epoch %d (step %d)", ckpt.mngr.directory, start_epoch, last)

  # --- loop --------------------------------------------------------------
  tty = sys.stderr.isatty()
  for epoch in range(start_epoch, cfg.epochs):
    t0, wait, acc = time.perf_counter(), 0.0, None
    bar = tqdm(
      range(steps_per_epoch),
      desc=f"epoch {epoch + 1}/{cfg.epochs}",
      disable=None if tty else False,
      mininterval=0.5 if tty else 30,
      leave=False,
    )
    for i in bar:
      tw = time.perf_counter()
      batch = next(train_iter)
      wait += time.perf_counter() - tw
      state, sums = train_step(state, sharding.global_batch(batch, batch_sh))
      acc = sums if acc is None else jax.tree.map(lambda a, b: a + b, acc, sums)
      if (i + 1) % cfg.log_every == 0 or i + 1 == steps_per_epoch:
        host, bad = jax.device_get((acc, state["first_bad_step"]))
        if bad >= 0:
          raise NonFiniteLossError(
            f"loss is not finite at step {int(bad)} (epoch {epoch + 1}); training stopped. "
            f"The last good checkpoint is step {ckpt.latest_step()} in {workdir / 'checkpoints'}."
          )
        m = losses.finalize(host)
        bar.set_postfix(loss=f"{m['loss']:.3f}", mae=f"{m['age_mae']:.2f}", acc=f"{m['gender_acc']:.3f}", refresh=False)
    train_s = time.perf_counter() - t0
    tm = losses.finalize(jax.device_get(acc))
    vm = evaluate_split(eval_step, state, val_src, cfg.batch_size, batch_sh, eval_fields)
    step = int(jax.device_get(state["step"]))
    entry = {
        "epoch": epoch + 1, "step": step,
        **{f"train_{k}": v for k, v in tm.items() if k != "n"},
        **{f"val_{k}": v for k, v in vm.items() if k != "n"},
        "lr": float(jax.device_get(state["opt_state"].hyperparams["learning_rate"])),
        "epoch_time_s": round(time.perf_counter() - t0, 2), "train_time_s": round(train_s, 2),
        "images_per_s": round(steps_per_epoch * cfg.batch_size / train_s, 1),
        "input_wait_frac": round(wait / train_s, 4),
    }  # fmt: skip
    history.append(entry)
    ckpt.save(
      step, state, {"train_iter": train_iter.get_state(), "epoch": epoch + 1}, {checkpoint.BEST_METRIC: vm["age_mae"]}
    )
    if jax.process_index() == 0:
      history_path.write_text(json.dumps(history, indent=1) + "\n")
    print(
      f"epoch {epoch + 1}/{cfg.epochs} step {step}: loss {tm['loss']:.3f} mae {tm['age_mae']:.2f} acc {tm['gender_acc']:.3f}"
      f" | val loss {vm['loss']:.3f} mae {vm['age_mae']:.2f} acc {vm['gender_acc']:.3f}"
      f" | {entry['images_per_s']:.0f} img/s, input wait {100 * entry['input_wait_frac']:.1f}%, {entry['epoch_time_s']:.0f}s",
      flush=True,
    )
  ckpt.close()
  if jax.process_index() == 0:
    run.update({"wall_s": round(time.perf_counter() - t_start, 2), "resumed_at_epoch": start_epoch})
    run.update({"workdir": str(workdir), "epochs_done": len(history), "final": history[-1] if history else None})
    (workdir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
  return history[-1] if history else {}


def parse_args(argv: list[str] | None = None) -> tuple[config_lib.Config, str]:
  p = argparse.ArgumentParser(prog="python -m jaxface.train", description=__doc__.split("\n\n")[1])
  p.add_argument("--arch", default="custom", choices=["custom", "resnet50", "mobilenet_v2"])
  p.add_argument("--preset", default="classic", choices=sorted(config_lib.PRESETS))
  p.add_argument("--workdir", required=True)
  p.add_argument("--data", help="UTKFace.tar.gz or folder (default: $JAXFACE_DATA, then TFDS's manual folder)")
  p.add_argument(
    "--config", dest="dataset", choices=["subset5000", "full"], help="utk_face config (default subset5000)"
  )
  p.add_argument("--tfds-dir")
  p.add_argument("--epochs", type=int)
  p.add_argument("--batch-size", type=int)
  p.add_argument("--image-size", type=int)
  p.add_argument("--lr", type=float)
  p.add_argument("--lr-schedule", choices=["constant", "cosine"])
  p.add_argument("--warmup-epochs", type=float)
  p.add_argument("--age-loss-weight", type=float)
  p.add_argument("--gender-loss-weight", type=float)
  p.add_argument("--pretrained", help="converted DIR (python -m jaxface.convert) or a torchvision .safetensors/.pth")
  p.add_argument("--devices", choices=["auto", "cpu", "gpu", "tpu"])
  p.add_argument("--dtype", choices=["float32", "bfloat16"])
  p.add_argument("--no-augment", dest="augment", action="store_const", const=False)
  p.add_argument("--seed", type=int)
  p.add_argument("--log-every", type=int)
  p.add_argument("--distributed", action="store_true", help="multi-host: call jax.distributed.initialize() first")
  a = vars(p.parse_args(argv))
  workdir, distributed = a.pop("workdir"), a.pop("distributed")
  if distributed:
    jax.distributed.initialize()
  return config_lib.make(a.pop("arch"), a.pop("preset"), **a), workdir


def main(argv: list[str] | None = None) -> int:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
  for noisy in ("absl", "jax._src.xla_bridge", "orbax"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  cfg, workdir = parse_args(argv)
  logging.info("Config: %s", json.dumps(dataclasses.asdict(cfg)))
  try:
    train(cfg, workdir)
  except (prepare.source_lib.DataNotFoundError, NonFiniteLossError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
