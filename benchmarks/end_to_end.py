"""Training end to end in each input mode, next to the step alone, and each mode's input ceiling.

  python benchmarks/end_to_end.py --data PATH [--arch custom] [--image-size 64] [--batch-size 64]
      [--epochs 3] [--modes stream device] [--steps-per-call 0] [--name end_to_end_cpu]

1. trainer: whole epochs of subset5000 train through the trainer's own loop
   (``jaxface.training.trainer.train``), in each input mode. images/s over the
   train part of each epoch (input, steps, metric sums and host syncs
   included; validation left out), median of the epochs after the first,
   which compiles.
2. step only: ``train_throughput.bench`` at the same arch, batch and size: one
   batch, already on the device, stepped again and again.
3. input ceiling: each feed with a step that does almost nothing (it reads
   every pixel of its batch), over one epoch after a warm-up epoch; and the
   device feed's time per call, which bounds its dispatch overhead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import common
import jax
import jax.numpy as jnp
import train_throughput

from jaxface import config as config_lib
from jaxface import sharding
from jaxface.data import arrays, prepare
from jaxface.training import feeds, trainer


def whole_epochs(arch: str, mode: str, a) -> dict:
  cfg = config_lib.make(
    arch, image_size=a.image_size, batch_size=a.batch_size, epochs=a.epochs, input=mode,
    steps_per_call=a.steps_per_call, data=a.data, log_every=10,
  )  # fmt: skip
  with tempfile.TemporaryDirectory() as wd:
    t = time.perf_counter()
    trainer.train(cfg, wd)
    wall = time.perf_counter() - t
    history = json.loads((Path(wd) / "history.json").read_text())
    run = json.loads((Path(wd) / "run.json").read_text())
  each = [h["images_per_s"] for h in history]
  return {
    "kind": "trainer", "mode": run["input"], "arch": arch, "batch": a.batch_size, "image_size": a.image_size,
    "epochs": a.epochs, "images_per_s": statistics.median(each[1:] or each), "images_per_s_each": each,
    "input_wait_frac_each": [h["input_wait_frac"] for h in history], "wall_s": round(wall, 1),
  }  # fmt: skip


def _noop_step(state, batch):
  """Reads every pixel of the batch, and nothing more."""
  return {"x": state["x"] + batch["image"].astype(jnp.float32).mean()}, {"n": jnp.float32(batch["image"].shape[0])}


def ceiling(mode: str, a) -> dict:
  b = prepare.prepare(a.data, "subset5000", a.image_size)
  mesh = sharding.data_mesh(jax.devices())
  kw = dict(mesh=mesh, batch_size=a.batch_size, seed=0, eval_step=None)
  if mode == "stream":
    src = b.as_data_source("train")
    feed = feeds.StreamFeed(src, src, train_step=_noop_step, epochs=2, **kw)
  else:
    train = arrays.load(b, "train")
    feed = feeds.DeviceFeed(
      train, train, train_step=_noop_step, steps_per_call=a.steps_per_call, compiler_options=None, **kw
    )
  state = {"x": jnp.zeros(())}
  calls = []
  for epoch in (0, 1):  # a warm-up epoch, then the timed one
    t0, done = time.perf_counter(), 0
    while done < feed.steps_per_epoch:
      k = min(feed.steps_per_call, feed.steps_per_epoch - done)
      tc = time.perf_counter()
      state, _, _ = feed.run(state, epoch, done, k)
      calls.append(time.perf_counter() - tc)
      done += k
    jax.block_until_ready(state)
    seconds = time.perf_counter() - t0
  per_call = statistics.median(calls[-(feed.steps_per_epoch // feed.steps_per_call) :])
  return {
    "kind": "ceiling", "mode": mode, "batch": a.batch_size, "image_size": a.image_size,
    "images_per_s": round(feed.steps_per_epoch * a.batch_size / seconds, 1), "steps_per_call": feed.steps_per_call,
    "call_ms_median": round(1000 * per_call, 3),
  }  # fmt: skip


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", required=True, help="UTKFace.tar.gz or folder")
  p.add_argument("--archs", nargs="+", default=["custom"])
  p.add_argument("--image-size", type=int, default=64)
  p.add_argument("--batch-size", type=int, default=64)
  p.add_argument("--epochs", type=int, default=3)
  p.add_argument("--modes", nargs="+", default=["stream", "device"], choices=["stream", "device"])
  p.add_argument("--steps-per-call", type=int, default=0, help="device mode (0: its default for the platform)")
  p.add_argument("--name")
  a = p.parse_args()
  t0 = time.perf_counter()
  dev = jax.devices()[0]
  rows = []
  for mode in a.modes:
    rows.append(ceiling(mode, a))
    print(
      f"ceiling   {mode:6s} {rows[-1]['images_per_s']:10.0f} img/s  {rows[-1]['call_ms_median']:.2f} ms/call",
      flush=True,
    )
  for arch in a.archs:
    step = train_throughput.bench(arch, a.batch_size, a.image_size, "float32", 20, "auto")
    rows.append({"kind": "step_only", **step})
    print(f"step only {arch:13s} {step['images_per_s']:10.1f} img/s", flush=True)
    for mode in a.modes:
      r = whole_epochs(arch, mode, a)
      r["vs_step_only"] = round(r["images_per_s"] / step["images_per_s"], 3)
      rows.append(r)
      print(
        f"trainer   {arch:13s} {mode:6s} {r['images_per_s']:10.1f} img/s  ({r['vs_step_only']:.2f}x step only)",
        flush=True,
      )
  meta = common.provenance("end_to_end", t0, platform=dev.platform, device=f"{jax.device_count()}x {dev.device_kind}")
  common.write(a.name or f"end_to_end_{dev.platform}", rows, meta)


if __name__ == "__main__":
  main()
