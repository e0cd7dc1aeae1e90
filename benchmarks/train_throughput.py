"""Training throughput of jaxface's real jitted train step, on every device of one platform.

  python benchmarks/train_throughput.py [--archs custom resnet50 mobilenet_v2] [--batch-sizes 32]
      [--image-sizes 128 224] [--dtypes float32 bfloat16] [--depthwise auto grouped] [--steps 5] [--devices auto]

For each combination: compile time; the median step time over --steps timed
steps after a warm-up step (each synchronised with block_until_ready);
images/s; FLOPs per step from XLA's cost analysis, achieved TFLOP/s and, on a
known accelerator, the fraction of its peak; peak device memory where JAX
reports it. Writes benchmarks/results/train_jax_<platform>.json.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import shlex
import sys
import time

import common  # noqa: F401  (puts the repo on sys.path)
import jax
import numpy as np
from flax import nnx

from jaxface import config as config_lib
from jaxface import sharding
from jaxface.training import model_def, optimizer, steps
from jaxface.xla import depthwise as depthwise_lib
from jaxface.xla import options as xla_options


def prepare(arch: str, batch: int, size: int, dtype: str, devices: str, compiler_options="jaxface", depthwise="auto"):
  """The compiled train step of ``arch`` at this shape, its state and one batch on the devices: (compiled, state,
  batch, compile seconds, FLOPs per step). ``compiler_options``: "jaxface" for the trainer's own
  (jaxface/xla_options.py), else a dict or None; ``depthwise``: the DepthwiseConv formulation (jaxface/depthwise.py;
  "auto" is the trainer's)."""
  cfg = config_lib.make(arch, image_size=size, batch_size=batch, dtype=dtype, devices=devices)
  devs = sharding.select_devices(devices)
  mesh = sharding.data_mesh(devs)
  sharding.check_batch_divides(batch, mesh)
  repl, batch_sh = sharding.replicated(mesh), sharding.batch_sharded(mesh)
  mdef, params, batch_stats = model_def.init_model(cfg)
  if depthwise != "auto":
    model = depthwise_lib.set_impl(nnx.merge(mdef.train, params, batch_stats), depthwise)
    mdef, params, batch_stats = model_def.split(model, mdef.inputs)
  tx = optimizer.from_config(cfg, 100)
  state = jax.device_put(steps.init_state(params, batch_stats, tx, 0), repl)
  rng = np.random.default_rng(0)
  host = {
    "image": rng.integers(0, 256, (batch, size, size, 3), np.uint8),
    "age": rng.integers(1, 90, batch),
    "gender": rng.integers(0, 2, batch),
  }
  batch_dev = sharding.global_batch(host, batch_sh)
  if compiler_options == "jaxface":
    compiler_options = xla_options.compiler_options(devs[0].platform)
  step = jax.jit(
    steps.make_train_step(mdef, tx, cfg), in_shardings=(repl, batch_sh), out_shardings=(repl, repl),
    donate_argnums=(0,), compiler_options=compiler_options,
  )  # fmt: skip
  t = time.perf_counter()
  compiled = step.lower(state, batch_dev).compile()
  compile_s = time.perf_counter() - t
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  flops = float(cost.get("flops", 0.0)) * len(devs) if cost else None  # cost analysis is per device
  return compiled, state, batch_dev, compile_s, flops


def bench(
  arch: str, batch: int, size: int, dtype: str, n_steps: int, devices: str, compiler_options="jaxface", depthwise="auto"
) -> dict:
  """One row (``prepare``'s arguments)."""
  compiled, state, batch_dev, compile_s, flops = prepare(arch, batch, size, dtype, devices, compiler_options, depthwise)
  devs = sharding.select_devices(devices)
  if compiler_options == "jaxface":  # recorded as what it was
    compiler_options = xla_options.compiler_options(devs[0].platform)
  holder = {"state": state, "sums": []}

  def one():
    holder["state"], sums = compiled(holder["state"], batch_dev)
    holder["sums"].append(sums)  # read after timing: no host sync or extra op inside a step
    return sums

  first, times = common.timed(one, n_steps, warmup=1, sync=jax.block_until_ready)
  mem = devs[0].memory_stats() or {}
  # The same batch every step: the mean loss of the first and last step checks numerics across settings.
  losses = [float(s["loss"]) / float(s["n"]) for s in holder["sums"]]
  return common.row(
    "jax", arch, batch, size, dtype, f"{len(devs)}x {devs[0].device_kind}", first, times, flops,
    compile_s=round(compile_s, 2), peak_mem_bytes=mem.get("peak_bytes_in_use"), compiler_options=compiler_options,
    loss_first=losses[0], loss_last=losses[-1], depthwise=depthwise,
  )  # fmt: skip


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--archs", nargs="+", default=["custom", "resnet50", "mobilenet_v2"])
  p.add_argument("--batch-sizes", nargs="+", type=int, default=[32])
  p.add_argument("--image-sizes", nargs="+", type=int, default=[128])
  p.add_argument("--dtypes", nargs="+", default=["float32"])
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--devices", default="auto")
  p.add_argument(
    "--skip", nargs="*", default=[], help="arch:image_size pairs to leave out (e.g. resnet50:224 on a CPU)"
  )
  p.add_argument(
    "--depthwise", nargs="+", default=["auto"], choices=depthwise_lib.IMPLS,
    help="the depthwise and grouped convolutions' formulations to run each combination with (jaxface/xla/depthwise.py)",
  )  # fmt: skip
  p.add_argument("--name", help="result file name (default train_jax_<platform>)")
  a = p.parse_args()
  t0 = time.perf_counter()
  cpu_peak = common.cpu_peak_flops() if jax.devices()[0].platform == "cpu" else {}
  rows = []
  for arch, b, s, d, dw in itertools.product(a.archs, a.batch_sizes, a.image_sizes, a.dtypes, a.depthwise):
    if f"{arch}:{s}" in a.skip:
      continue
    r = bench(arch, b, s, d, a.steps, a.devices, depthwise=dw)
    if r["peak_fraction"] is None and r["tflops"] and (peak := cpu_peak.get(d)):  # a CPU: its peak from the ISA
      r["peak_fraction"] = round(r["tflops"] * 1e12 / peak, 4)
    print(
      f"{arch:13s} b{b:<4d} {s}px {d:9s} {dw:8s} {r['images_per_s']:9.1f} img/s  step {r['step_ms_median']:9.1f} ms  compile {r['compile_s']:.1f}s  {r['tflops']} TFLOP/s",
      flush=True,
    )
    rows.append(r)
  dev = jax.devices(None if a.devices == "auto" else a.devices)[0]
  meta = {
    "benchmark": "train_throughput", "command": "python " + " ".join(map(shlex.quote, sys.argv)),
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "platform": dev.platform,
    "host": common.host(), "cpu_peak": cpu_peak or None,
    "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""), "wall_s": round(time.perf_counter() - t0, 1),
  }  # fmt: skip
  common.write(a.name or f"train_jax_{dev.platform}", rows, meta)


if __name__ == "__main__":
  main()
