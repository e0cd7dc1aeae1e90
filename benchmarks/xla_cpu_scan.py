"""The train step alone, inside a lax.scan, and unrolled: why the device feed unrolls its steps on CPU.

  python benchmarks/xla_cpu_scan.py [--arch custom] [--image-size 64] [--batch-size 64] [--steps 2]
      [--name xla_cpu_scan]

Times ``--steps`` train steps (the trainer's own step, one batch gathered from
a device-resident array per step) three ways on the default device: one
jitted call per step; one call whose steps are a ``lax.scan``; one call whose
steps are unrolled in the trace. Seconds per step, the faster of 2 calls after
compiling ahead of time, with jaxface's compiler options and with XLA's defaults.
"""

from __future__ import annotations

import argparse
import time

import common
import jax
import jax.numpy as jnp
import numpy as np

from jaxface import config as config_lib
from jaxface.training import model_def, optimizer, steps
from jaxface.xla import options as xla_options


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--arch", default="custom")
  p.add_argument("--image-size", type=int, default=64)
  p.add_argument("--batch-size", type=int, default=64)
  p.add_argument("--steps", type=int, default=1, help="steps per call (a length-1 scan is still a loop)")
  p.add_argument("--name", default="xla_cpu_scan")
  a = p.parse_args()
  t0 = time.perf_counter()
  cfg = config_lib.make(a.arch, image_size=a.image_size, batch_size=a.batch_size)
  mdef, params, batch_stats = model_def.init_model(cfg)
  tx = optimizer.from_config(cfg, 100)
  state = steps.init_state(params, batch_stats, tx, 0)
  train_step = steps.make_train_step(mdef, tx, cfg)
  n, b = 4 * a.batch_size, a.batch_size
  rng = np.random.default_rng(0)
  data = jax.device_put({
    "image": rng.integers(0, 256, (n, a.image_size, a.image_size, 3), np.uint8),
    "age": rng.integers(1, 90, n), "gender": rng.integers(0, 2, n),
  })  # fmt: skip

  def one(state, data, i):
    return train_step(state, {k: jax.lax.dynamic_slice_in_dim(v, (i % 4) * b, b) for k, v in data.items()})

  def scanned(state, data):
    return jax.lax.scan(lambda s, i: one(s, data, i), state, jnp.arange(a.steps))

  def unrolled(state, data):
    out = []
    for i in range(a.steps):
      state, sums = one(state, data, i)
      out.append(sums)
    return state, out

  dev = jax.devices()[0]
  rows = []
  for label, opts in (("jaxface", xla_options.compiler_options(dev.platform)), ("xla_default", None)):
    for how, fn, per_call in (
      ("one_step_per_call", one, 1),
      ("lax_scan", scanned, a.steps),
      ("unrolled", unrolled, a.steps),
    ):
      args = (state, data, 0) if how == "one_step_per_call" else (state, data)
      f = jax.jit(fn, compiler_options=opts).lower(*args).compile()
      times = []
      for _ in range(2):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append((time.perf_counter() - t) / per_call)
      s = min(times)
      rows.append({"compiler_options": label, "how": how, "steps_per_call": per_call, "s_per_step": round(s, 4)})
      print(f"{label:12s} {how:18s} {s:8.3f} s/step", flush=True)
  meta = common.provenance(
    "xla_cpu_scan",
    t0,
    arch=a.arch,
    image_size=a.image_size,
    batch_size=a.batch_size,
    device=dev.device_kind,
    platform=dev.platform,
  )
  common.write(a.name, rows, meta)


if __name__ == "__main__":
  main()
