"""glibc's malloc as jaxface sets it (jaxface/xla/malloc.py) against glibc's defaults, each in fresh processes.

  python benchmarks/malloc.py --photos DIR [--archs mobilefacenet custom] [--steps 5] [--rounds 2] [--name malloc_cpu]

- The train step (benchmarks/train_throughput.py's, on random images, batch 64 at each arch's cpu-preset size),
  with glibc's defaults and with ``glibc.malloc.hugetlb=1`` (what ``python -m jaxface.train`` starts with): its
  median step time, and the process's user and system CPU time.
- ``python -m jaxface.predict DIR`` (the shipped model), with ``JAXFACE_MALLOC=0`` and without: wall time, user and
  system CPU time, and peak resident memory; the records must be the same.
The settings alternate, --rounds times. The kernel's transparent huge page mode is recorded with the host.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import common

from jaxface import provenance
from jaxface.xla import malloc

BATCH = 64
DEFAULTS = {"JAXFACE_MALLOC": "0", "GLIBC_TUNABLES": ""}  # glibc as it comes
TRAIN = {"glibc defaults": DEFAULTS, "huge pages": {"GLIBC_TUNABLES": f"{malloc.TUNABLE}=1"}}
PREDICT = {"glibc defaults": DEFAULTS, "jaxface": {}}
STEP = (
  "import json, sys; sys.path.insert(0, 'benchmarks'); import train_throughput as t; "
  "r = t.bench(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), 'float32', int(sys.argv[4]), 'auto'); "
  "print(json.dumps({k: r[k] for k in ('step_ms_median', 'images_per_s', 'loss_last')}))"
)


def run(cmd: list[str], env: dict) -> tuple[str, dict]:
  """Runs ``cmd`` with ``env`` over this environment: (its stdout, its wall time, CPU times and peak memory)."""
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=common.ROOT, env={**os.environ, **env}, stdout=out, stderr=err)
    _, status, usage = os.wait4(p.pid, 0)  # this child's own resources (RUSAGE_CHILDREN's peak is over all of them)
    wall = time.perf_counter() - t
    out.seek(0), err.seek(0)
    if (code := os.waitstatus_to_exitcode(status)) != 0:
      raise RuntimeError(f"{' '.join(cmd)} exited {code}: {err.read().decode()[-2000:]}")
    text = out.read().decode()
  return text, {
    "wall_s": round(wall, 2), "user_s": round(usage.ru_utime, 2), "system_s": round(usage.ru_stime, 2),
    "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
  }  # fmt: skip


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--photos", required=True, help="a folder of face photos for predict")
  p.add_argument("--archs", nargs="+", default=["mobilefacenet", "custom"])
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--name", default="malloc_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  from jaxface import config as config_lib

  rows, records = [], {}
  for round_ in range(a.rounds):
    for arch in a.archs:
      size = config_lib.make(arch, "cpu").image_size
      for setting, env in TRAIN.items():
        cmd = [sys.executable, "-c", STEP, arch, str(BATCH), str(size), str(a.steps)]
        out, usage = run(cmd, env)
        step = json.loads(out.strip().splitlines()[-1])
        rows.append({"job": "train step", "arch": arch, "batch": BATCH, "image_size": size, "setting": setting,
                     "round": round_, **step, **usage})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    for setting, env in PREDICT.items():
      out, usage = run([sys.executable, "-m", "jaxface.predict", a.photos], env)
      records.setdefault(setting, out)
      rows.append({"job": "predict", "photos": len(os.listdir(a.photos)), "setting": setting, "round": round_,
                   "records_same": out == records["glibc defaults"] if "glibc defaults" in records else None, **usage})  # fmt: skip
      print(json.dumps(rows[-1]), flush=True)
  meta = common.provenance("malloc", t0, allocator=provenance.allocator(), steps=a.steps, rounds=a.rounds)
  common.write(a.name, rows, meta)


if __name__ == "__main__":
  main()
