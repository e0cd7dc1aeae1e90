"""Where XLA:CPU's time goes: the train steps at the cpu presets' shapes and the detector's network, op by op.

  python benchmarks/xla_profile.py [--archs custom resnet50 mobilenet_v2] [--batch 64] [--calls 3]
      [--detector-batch 4] [--name xla_profile_cpu]

Each function is compiled as jaxface runs it (its XLA options), warmed up, then
run --calls times under ``jax.profiler.trace``; the trace's thunk events (one
per compiled HLO operation XLA:CPU runs) are summed by kind:
- ``convolution``: Eigen's convolutions, forward and both backward passes;
- ``library``: YNNPACK's fusions (dots and reductions, ``ynn_fusion``) and dots;
- ``elementwise``: XLA's own loop fusions (batch norm, activations, the shifted
  depthwise convolutions, the optimizer);
- ``data movement``: copies, transposes, pads and slices on their own;
- ``pooling``: reduce-window and select-and-scatter;
- ``other``.
Reported per call: wall ms (median, without the profiler), the thunks' summed ms (on all threads; XLA runs
independent thunks side by side) and count, ms per kind, the
largest thunks, FLOPs (XLA's cost analysis), achieved GFLOP/s, and the fraction
of the CPU's float32 peak (``common.cpu_peak_flops``: cores x clock x FLOPs a
cycle from the vector ISA).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import shutil
import tempfile
import time

import common
import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("convolution", "library", "elementwise", "data movement", "pooling", "other")
# The runtime's own events (dispatch, waits, the thread pool's bookkeeping), not compiled operations.
RUNTIME = re.compile(
  r"^(ThunkExecutor|PjitFunction|\$|DevicePut|H2D|ParseArguments|SlinkyThreadPool|ThreadpoolListener|TfrtCpu|Pjrt"
  r"|CommonPjRt|Handle inputs|Wait for)"
)


def kind(name: str) -> str:
  if name.startswith(("convolution", "conv_general_dilated")):
    return "convolution"
  if name.startswith(("ynn_fusion", "xnn_fusion", "dot", "custom-call")):
    return "library"
  if re.match(r"^(wrapped_)?(reduce-window|select-and-scatter)", name):
    return "pooling"
  if re.match(r"^(copy|transpose|pad|slice|bitcast|concatenate|dynamic)", name) and "fusion" not in name:
    return "data movement"
  if "fusion" in name or name.startswith(("wrapped_", "broadcast", "add", "multiply", "reduce")):
    return "elementwise"
  return "other"


def profile(fn, args: tuple, calls: int) -> dict:
  """Runs ``fn(*args)`` (compiled, warmed up) ``calls`` times, then as many under the profiler: the median wall
  time of the first, and the thunks' time by kind from the second."""
  walls = []
  for _ in range(calls):
    t = time.perf_counter()
    args = jax.block_until_ready(fn(*args))
    walls.append(time.perf_counter() - t)
  wall = sorted(walls)[len(walls) // 2]
  out_dir = tempfile.mkdtemp(prefix="xla_profile_")
  try:
    with jax.profiler.trace(out_dir, create_perfetto_trace=True):
      for _ in range(calls):
        args = fn(*args)
      jax.block_until_ready(args)
    trace = json.load(gzip.open(glob.glob(f"{out_dir}/**/*.trace.json.gz", recursive=True)[0]))
  finally:
    shutil.rmtree(out_dir, ignore_errors=True)
  per_name, count = collections.Counter(), collections.Counter()
  for e in trace["traceEvents"]:
    if e.get("ph") == "X" and not RUNTIME.match(e["name"]):
      per_name[e["name"]] += e["dur"] / 1000 / calls
      count[e["name"]] += 1 / calls
  by_kind = collections.Counter()
  for name, ms in per_name.items():
    by_kind[kind(name)] += ms
  thunk_ms = sum(per_name.values())
  return {
    "wall_ms": round(1000 * wall, 1), "thunk_ms": round(thunk_ms, 1), "thunks": round(sum(count.values())),
    "ms_by_kind": {k: round(by_kind[k], 1) for k in KINDS},
    "share_by_kind": {k: round(by_kind[k] / thunk_ms, 3) for k in KINDS},
    "largest": [[n, round(ms, 2)] for n, ms in per_name.most_common(8)],
  }  # fmt: skip


def train_step(arch: str, batch: int, size: int, calls: int, peak: float | None) -> dict:
  import train_throughput

  compiled, state, batch_dev, _, flops = train_throughput.prepare(arch, batch, size, "float32", "cpu")
  state, _ = compiled(state, batch_dev)  # warm-up
  jax.block_until_ready(state)

  def step(state):
    return (compiled(state, batch_dev)[0],)

  r = profile(step, (state,), calls)
  return _with_flops({"what": "train step", "arch": arch, "batch": batch, "image_size": size, **r}, flops, peak)


def detector(batch: int, calls: int, peak: float | None) -> dict:
  from flax import nnx

  from jaxface.faces import cnn
  from jaxface.xla import options as xla_options

  model = cnn.load_model()
  graphdef, state = nnx.split(model)

  def net(state, images):
    return nnx.merge(graphdef, state)(images.astype(jnp.float32) / 127.5 - 1.0)

  x = np.random.default_rng(0).integers(0, 256, (batch, model.size, model.size, 3), np.uint8)
  compiled = jax.jit(net, compiler_options=xla_options.compiler_options("cpu")).lower(state, x).compile()
  cost = compiled.cost_analysis()
  flops = float((cost[0] if isinstance(cost, list) else cost).get("flops", 0.0))
  jax.block_until_ready(compiled(state, x))

  def call(state):
    jax.block_until_ready(compiled(state, x))
    return (state,)

  r = profile(call, (state,), calls)
  return _with_flops({"what": "detector network", "arch": "blazeface", "batch": batch, "image_size": model.size, **r},
                     flops, peak)  # fmt: skip


def _with_flops(row: dict, flops: float | None, peak: float | None) -> dict:
  gflops = flops / row["wall_ms"] / 1e6 if flops else None
  return row | {
    "flops_per_call": flops, "gflops_per_s": round(gflops, 1) if gflops else None,
    "peak_fraction": round(gflops * 1e9 / peak, 4) if gflops and peak else None,
  }  # fmt: skip


def main() -> None:
  from jaxface import config as config_lib

  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--archs", nargs="+", default=["custom", "resnet50", "mobilenet_v2"])
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--calls", type=int, default=3)
  p.add_argument("--detector-batch", type=int, default=4)
  p.add_argument("--name", default="xla_profile_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  peak = common.cpu_peak_flops()
  rows = []
  for arch in a.archs:
    rows.append(train_step(arch, a.batch, config_lib.make(arch, "cpu").image_size, a.calls, peak["float32"]))
    print(json.dumps(rows[-1]), flush=True)
  rows.append(detector(a.detector_batch, a.calls, peak["float32"]))
  print(json.dumps(rows[-1]), flush=True)
  common.write(a.name, rows, common.provenance("xla_profile", t0, cpu_peak=peak))


if __name__ == "__main__":
  main()
