"""XLA:CPU flags against jaxface's real train step: which settings make training on a CPU faster.

  python benchmarks/xla_cpu_flags.py [--sets default eigen_conv ...] [--archs custom resnet50 mobilenet_v2]
      [--batch-size 32] [--image-size 128] [--steps 3] [--name train_jax_cpu_xla_flags]

XLA reads XLA_FLAGS once, when the backend starts, so each flag set and arch
runs ``train_throughput.bench`` in a process of its own, without jaxface's
per-function options (jaxface/xla_options.py): "default" is XLA's default.
Every row records its flag set, images/s, and the mean loss of the first and
last step on the same batch, so a set that changes the numbers shows. All
flags named here are ``xla_cpu_*``: none of them touches the GPU or TPU
compilers. Writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import time

import common

# Convolutions and dots go to YNNPACK by default in jaxlib 0.10 (the `__ynn_fusion` custom fusions in
# the compiled HLO). The first sets move them elsewhere (eigen_conv_dot is what jaxface/xla_options.py
# adopts on CPU); the rest try more flags on top of Eigen's convolutions.
EIGEN_CONV = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
FLAG_SETS = {
  "default": "",
  "eigen_conv": EIGEN_CONV,
  "eigen_conv_dot": "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution,-individual_dot",
  "onednn_conv": f"{EIGEN_CONV} --xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=+individual_convolution",
  "eigen_conv+fast_math": f"{EIGEN_CONV} --xla_cpu_enable_fast_math=true",
  "eigen_conv+fast_runtime": f"{EIGEN_CONV} --xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_RUNTIME",
  "eigen_conv+xnn_graph_greedy": f"{EIGEN_CONV} --xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
  "eigen_conv+concurrency_scheduler": f"{EIGEN_CONV} --xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED",
}


def child(flag_set: str, archs: list[str], batch: int, size: int, steps: int) -> None:
  """Runs in a fresh process whose XLA_FLAGS the parent set; prints one JSON list of rows."""
  import train_throughput  # imports jax: only here, after XLA_FLAGS is in the environment

  # compiler_options=None: XLA's own defaults plus XLA_FLAGS, not jaxface's per-function options.
  rows = [train_throughput.bench(arch, batch, size, "float32", steps, "cpu", None) for arch in archs]
  print(json.dumps(rows))


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--sets", nargs="+", default=list(FLAG_SETS), choices=list(FLAG_SETS))
  p.add_argument("--archs", nargs="+", default=["custom", "resnet50", "mobilenet_v2"])
  p.add_argument("--batch-size", type=int, default=32)
  p.add_argument("--image-size", type=int, default=128)
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--name", default="train_jax_cpu_xla_flags")
  p.add_argument("--child", help=argparse.SUPPRESS)
  a = p.parse_args()
  if a.child:
    child(a.child, a.archs, a.batch_size, a.image_size, a.steps)
    return 0

  t0 = time.perf_counter()
  rows, base = [], {}
  for name in a.sets:
    for arch in a.archs:  # a process per arch too: a flag that crashes XLA loses one row, not the set
      env = {**os.environ, "XLA_FLAGS": FLAG_SETS[name]}
      cmd = [sys.executable, __file__, "--child", name, "--archs", arch, "--batch-size", str(a.batch_size)]
      cmd += ["--image-size", str(a.image_size), "--steps", str(a.steps)]
      out = subprocess.run(cmd, env=env, capture_output=True, text=True)
      if out.returncode:
        err = out.stderr.strip().splitlines()[-1:] or [""]
        print(f"{name:32s} {arch:13s} failed (exit {out.returncode}): {err[0][:200]}", file=sys.stderr)
        rows.append({"flag_set": name, "xla_flags": FLAG_SETS[name], "arch": arch, "batch": a.batch_size,
                     "image_size": a.image_size, "exit_code": out.returncode, "error": out.stderr[-1000:]})  # fmt: skip
        continue
      (r,) = json.loads(out.stdout.strip().splitlines()[-1])
      r |= {"flag_set": name, "xla_flags": FLAG_SETS[name]}
      if name == "default":
        base[arch] = r
      if ref := base.get(arch):
        r["speedup_vs_default"] = round(r["images_per_s"] / ref["images_per_s"], 3)
        r["loss_last_rel_diff"] = abs(r["loss_last"] - ref["loss_last"]) / abs(ref["loss_last"])
      print(
        f"{name:32s} {arch:13s} {r['images_per_s']:7.1f} img/s  compile {r['compile_s']:5.1f}s"
        f"  x{r.get('speedup_vs_default', float('nan')):.2f}  loss {r['loss_first']:.4f} -> {r['loss_last']:.4f}",
        flush=True,
      )
      rows.append(r)
  meta = {
    "benchmark": "xla_cpu_flags", "command": "python " + " ".join(map(shlex.quote, sys.argv)),
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "platform": "cpu",
    "host": common.host(),
    "jax": importlib.metadata.version("jax"), "flag_sets": {n: FLAG_SETS[n] for n in a.sets}, "wall_s": round(time.perf_counter() - t0, 1),
  }  # fmt: skip
  common.write(a.name, rows, meta)
  return 0


if __name__ == "__main__":
  sys.exit(main())
