"""Inference: per-face latency at batch 1 and batched throughput, jaxface's evaluation-mode forward pass.

  python benchmarks/inference.py [--archs ...] [--batch-sizes 1 64] [--image-size 128] [--name NAME]

For the single-thread figure run it pinned to one core, as the README's
commands do (``taskset -c 0``), and the PyTorch side with
``peer_torch.py --mode inference --threads 1`` under the same pin. Writes
benchmarks/results/inference_jax_<platform>[...].json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time

import common
import jax
import numpy as np

from jaxface import config as config_lib
from jaxface.inference import InferenceModel, Restored
from jaxface.training import model_def
from jaxface.xla import options as xla_options


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--archs", nargs="+", default=["custom", "resnet50", "mobilenet_v2"])
  p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 64])
  p.add_argument("--image-size", type=int, default=128)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--name")
  a = p.parse_args()
  t0 = time.perf_counter()
  dev = jax.devices()[0]
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  rows = []
  for arch in a.archs:
    cfg = config_lib.make(arch, image_size=a.image_size)
    mdef, params, batch_stats = model_def.init_model(cfg)
    opts = xla_options.compiler_options(dev.platform)
    predict = InferenceModel(Restored(cfg, mdef.eval, params, batch_stats, 0))  # the path evaluate and predict take
    for b in a.batch_sizes:
      x = jax.device_put(np.random.default_rng(0).integers(0, 256, (b, a.image_size, a.image_size, 3), np.uint8))
      run = lambda f=predict, x=x: f(x)  # noqa: E731
      first, times = common.timed(run, a.steps, warmup=2, sync=jax.block_until_ready)
      r = common.row(
        "jax", arch, b, a.image_size, "float32", f"1x {dev.device_kind}", first, times, None,
        cores=cores, compiler_options=opts,
      )  # fmt: skip
      r["latency_ms_median"] = r["step_ms_median"]
      print(
        f"{arch:13s} b{b:<4d} {r['images_per_s']:9.1f} img/s  latency {r['step_ms_median']:8.2f} ms  cores {cores}",
        flush=True,
      )
      rows.append(r)
  meta = {
    "benchmark": "inference", "framework": "jax", "command": "python " + " ".join(map(shlex.quote, sys.argv)),
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "platform": dev.platform,
    "host": common.host(),
    "jax": jax.__version__, "wall_s": round(time.perf_counter() - t0, 1),
  }  # fmt: skip
  common.write(a.name or f"inference_jax_{dev.platform}", rows, meta)


if __name__ == "__main__":
  main()
