"""What every benchmark shares: provenance, result files, accelerator peaks. Imports no framework."""

from __future__ import annotations

import datetime
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT))

from jaxface.provenance import git_commit, host  # noqa: E402,F401  (stdlib-only module; host: re-exported)

# Dense peak FLOP/s by device-kind substring: (bfloat16, float32-as-run). On NVIDIA, XLA and
# PyTorch run float32 matmuls/convs as TF32 by default, so the float32 peak is TF32's.
PEAKS = {
  "H200": (989e12, 494e12),
  "H100": (989e12, 494e12),
  "A100": (312e12, 156e12),
  "L4": (121e12, 60e12),
  "TPU v6": (918e12, None),
  "TPU v5p": (459e12, None),
  "TPU v5": (197e12, None),
  "TPU v4": (275e12, None),
}


def peak_flops(device_kind: str, dtype: str) -> float | None:
  for key, (bf16, f32) in PEAKS.items():
    if key.lower() in device_kind.lower():
      return bf16 if dtype == "bfloat16" else f32
  return None


def cpu_peak_flops() -> dict:
  """This CPU's peak FLOP/s for the cores this process may use: cores x clock x FLOPs a core does a cycle.

  The clock is /proc/cpuinfo's "cpu MHz" (a virtual machine shows the nominal clock; turbo can be higher). FLOPs a
  cycle, float32: 2 FMA units x vector lanes x 2, the lanes from the widest vector ISA: 16 with AVX-512 on Intel,
  8 with AVX2, and 8 on AMD with AVX-512 too (Zen 4 runs a 512-bit FMA as two 256-bit halves). bfloat16: AMX's
  1024 a cycle where the CPU has AMX-BF16, else twice float32's with AVX512-BF16, else float32's."""
  import os

  h = host()
  isa, cores = set(h.get("isa", [])), len(os.sched_getaffinity(0))
  mhz = None
  with open("/proc/cpuinfo") as f:
    for line in f:
      if line.startswith("cpu MHz"):
        mhz = float(line.split(":")[1])
        break
  lanes = 16 if "avx512f" in isa and "AMD" not in h.get("cpu", "") else 8 if "avx2" in isa else 4
  fp32 = 2 * lanes * 2
  bf16 = 1024 if "amx_bf16" in isa else 2 * fp32 if "avx512_bf16" in isa else fp32
  hz = (mhz or 0) * 1e6
  return {
    "float32": cores * hz * fp32 if mhz else None, "bfloat16": cores * hz * bf16 if mhz else None,
    "cores": cores, "mhz": mhz, "float32_flops_per_cycle": fp32, "bfloat16_flops_per_cycle": bf16,
  }  # fmt: skip


def timed(fn, steps: int, warmup: int, sync) -> tuple[float, list[float]]:
  """(first call in seconds, per-step seconds after ``warmup`` more calls); ``sync`` waits for the device."""
  t = time.perf_counter()
  sync(fn())
  first = time.perf_counter() - t
  for _ in range(warmup):
    sync(fn())
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - t)
  return first, times


def row(
  framework: str,
  arch: str,
  batch: int,
  image_size: int,
  dtype: str,
  device: str,
  first_s: float,
  times: list[float],
  flops: float | None,
  **extra,
) -> dict:
  med = statistics.median(times)
  peak = peak_flops(device, dtype)
  achieved = flops / med if flops else None
  return {
    "framework": framework, "arch": arch, "batch": batch, "image_size": image_size, "dtype": dtype, "device": device,
    "first_call_s": round(first_s, 3), "step_ms_median": round(1000 * med, 3), "steps_timed": len(times),
    "images_per_s": round(batch / med, 2), "flops_per_step": flops,
    "tflops": round(achieved / 1e12, 4) if achieved else None,
    "peak_fraction": round(achieved / peak, 4) if achieved and peak else None,
    **extra,
  }  # fmt: skip


def provenance(benchmark: str, t0: float, **extra) -> dict:
  """The keys every result file starts with: what ran, when, where, and how long (``t0``: perf_counter at start)."""
  import jax  # only the JAX benchmarks call this

  return {
    "benchmark": benchmark, "command": "python " + " ".join(map(shlex.quote, sys.argv)),
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "host": host(),
    "jax": jax.__version__, **extra, "wall_s": round(time.perf_counter() - t0, 1),
  }  # fmt: skip


def write(name: str, rows: list[dict], meta: dict) -> Path:
  RESULTS.mkdir(parents=True, exist_ok=True)
  path = RESULTS / f"{name}.json"
  path.write_text(json.dumps({**meta, "git_commit": git_commit(), "rows": rows}, indent=2) + "\n")
  print(f"wrote {path}")
  return path
