"""Training under faults: kill -9 at random points, a full disk during a save, damaged checkpoints, process 0 killed.

  python benchmarks/faults.py [--kills 20] [--seed 0] [--name faults_cpu]

Each case runs ``python -m jaxface.train`` as a user would, breaks it, runs
the same command again until it finishes, and compares the final weights
with those of an unbroken run of the same command. The data are the tests'
fake archive (synthetic faces: the mechanics are what is measured) and the
model a tiny custom CNN at 32 px, so that a run takes seconds. The cases:
- kill: --kills runs, each killed with SIGKILL at a random moment (after a
  random number of checkpoints, then a random part of an epoch);
- full disk: the workdir on a small tmpfs, filled once the first
  checkpoint is written, so a later save fails; then space is freed;
- damaged: the newest checkpoint's files cut in half; then every checkpoint;
- process 0 killed: a run of 2 processes of 2 devices, process 0 killed
  after its first checkpoint; how long process 1 takes to stop, and what it
  says.
Target: every resumed run ends equal to the unbroken run, and no run ends
silently from scratch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np

sys.path.insert(0, str(common.ROOT / "tests"))
import fake_utkface  # noqa: E402

EPOCHS = 4
STEPS_PER_EPOCH = 6  # the fake archive's train split in batches of 8
WIDTHS = {"trunk": [4, 4, 8], "branch": [8, 8, 8]}


class Runs:
  def __init__(self, root: Path):
    self.root = root
    self.archive = root / "UTKFace.tar.gz"
    fake_utkface.write_archive(self.archive)
    self.tfds = root / "tfds"
    self.env = {
      **os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(root / "xla-cache"),
      "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }  # fmt: skip

  def start(self, workdir: Path, processes: int = 1, devices: int = 1, port: int | None = None) -> list:
    env = {**self.env, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    args = [sys.executable, "-m", "jaxface.train", "--arch", "custom", "--data", str(self.archive), "--dataset",
            "full", "--tfds-dir", str(self.tfds), "--image-size", "32", "--batch-size", "8", "--widths",
            json.dumps(WIDTHS), "--hidden", "16", "--epochs", str(EPOCHS), "--input", "device",
            "--workdir", str(workdir)]  # fmt: skip
    procs = []
    for i in range(processes):
      multi = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes), "--process-id", str(i)]
      log = open(self.root / f"{workdir.name}.{time.monotonic_ns()}.p{i}.log", "w+")  # noqa: SIM115
      p = subprocess.Popen([*args, *(multi if processes > 1 else [])], env=env, stdout=log, stderr=subprocess.STDOUT)
      p.log = log
      procs.append(p)
    return procs

  def finish(self, workdir: Path, processes: int = 1, devices: int = 1, tries: int = 3) -> list[str]:
    """The command run again until it ends with 0 (at most ``tries`` times): each run's output."""
    import portpicker

    outs = []
    for _ in range(tries):
      procs = self.start(workdir, processes, devices, portpicker.pick_unused_port())
      for p in procs:
        p.wait(timeout=600)
      outs.append(output(procs[0]))
      if all(p.returncode == 0 for p in procs):
        return outs
    raise RuntimeError(f"{workdir} did not finish in {tries} runs:\n{outs[-1][-3000:]}")


def output(p) -> str:
  p.log.flush()
  return Path(p.log.name).read_text()


def steps(workdir: Path) -> list[int]:
  """The checkpoints a run has finished writing (Orbax renames a step's folder into place when it is complete)."""
  d = workdir / "checkpoints"
  return sorted(int(x.name) for x in d.iterdir() if x.name.isdigit()) if d.is_dir() else []


def resumed_step(out: str) -> int | None:
  m = re.search(r"Resumed from .* \(step (\d+)\)", out)
  return int(m.group(1)) if m else None


def max_diff(a: Path, b: Path) -> float:
  import jax

  from jaxface.inference import restore

  pa, pb = (jax.tree_util.tree_leaves(restore.load(w, "last").params) for w in (a, b))
  return float(max(np.abs(np.asarray(x) - np.asarray(y)).max() for x, y in zip(pa, pb, strict=True)))


def last_line(out: str) -> str:
  lines = [ln for ln in out.splitlines() if ln.strip()]
  return lines[-1][:300] if lines else ""


def kills(runs: Runs, unbroken: Path, epoch_s: float, n: int, rng: random.Random) -> list[dict]:
  """Each run killed once a random number of checkpoints (0 to all but one) is on disk, then a random part of an
  epoch later: the moments spread over start-up, steps, evaluations and saves, whatever the machine's speed."""
  rows = []
  for i in range(n):
    wd = runs.root / f"kill{i}"
    after, delay = rng.randrange(EPOCHS), rng.uniform(0, epoch_s)
    (p,) = runs.start(wd)
    while len(steps(wd)) < after and p.poll() is None:
      time.sleep(0.005)
    time.sleep(delay)
    if p.poll() is None:
      p.send_signal(signal.SIGKILL)
    p.wait()
    at_kill = steps(wd)
    outs = runs.finish(wd)
    resumed = resumed_step(outs[0])
    d = max_diff(wd, unbroken)
    rows.append({
      "run": i, "killed_with_checkpoints": after, "then_after_s": round(delay, 3), "checkpoints_at_kill": at_kill,
      "resumed_from": resumed, "resumed_from_the_newest": resumed == (at_kill[-1] if at_kill else None),
      "runs_to_finish": len(outs), "max_abs_diff": d, "equal": d <= 1e-6,
    })  # fmt: skip
    print(json.dumps(rows[-1]), flush=True)
  return rows


def full_disk(runs: Runs, unbroken: Path) -> dict:
  mnt = runs.root / f"small-disk-{time.monotonic_ns()}"
  mnt.mkdir()
  r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True, text=True)
  if r.returncode:
    return {"skipped": f"cannot mount a tmpfs here: {r.stderr.strip()}"}
  try:
    wd = mnt / "run"
    (p,) = runs.start(wd)
    while not steps(wd) and p.poll() is None:
      time.sleep(0.01)
    filled = steps(wd)
    filler = mnt / "filler"
    with open(filler, "wb") as f:  # every byte left, so the next write fails with ENOSPC
      try:
        while True:
          f.write(b"\0" * 2**20)
          f.flush()
      except OSError:
        pass
    p.wait(timeout=600)
    out = output(p)
    stopped = {"rc": p.returncode, "checkpoints_when_full": filled, "checkpoints_after": steps(wd),
               "last_line": last_line(out), "says_no_space": "No space left" in out or "ENOSPC" in out,
               "ends_with_one_error_line": last_line(out).startswith("error:")}  # fmt: skip
    (runs.root / f"{mnt.name}.log").write_text(out)
    filler.unlink()
    outs = runs.finish(wd)
    d = max_diff(wd, unbroken)
    return {**stopped, "resumed_from": resumed_step(outs[0]), "max_abs_diff": d, "equal": d <= 1e-6}
  finally:
    subprocess.run(["umount", str(mnt)], check=False)


def truncate_state(step_dir: Path) -> None:
  """Cuts every data file of a saved state in half, as a full disk or a killed copy would."""
  for path in [f for f in (step_dir / "state").rglob("*") if f.is_file() and f.stat().st_size > 64]:
    with open(path, "r+b") as f:
      f.truncate(path.stat().st_size // 2)


def damaged(runs: Runs, unbroken: Path) -> dict:
  wd = runs.root / "damaged"
  shutil.copytree(unbroken, wd)
  newest = steps(wd)[-1]
  truncate_state(wd / "checkpoints" / str(newest))
  outs = runs.finish(wd)
  d = max_diff(wd, unbroken)
  one = {"damaged": newest, "resumed_from": resumed_step(outs[0]), "set_aside": sorted(
    x.name for x in (wd / "checkpoints").iterdir() if "unreadable" in x.name), "max_abs_diff": d, "equal": d <= 1e-6}  # fmt: skip
  every = runs.root / "every_damaged"
  shutil.copytree(unbroken, every)
  for s in steps(every):
    truncate_state(every / "checkpoints" / str(s))
  (p,) = runs.start(every)
  p.wait(timeout=600)
  out = output(p)
  return {"newest": one, "every": {"rc": p.returncode, "last_line": last_line(out), "started_from_scratch": (
    "epoch 1/" in out or bool(re.search(r"step \d+: loss", out)))}}  # fmt: skip


def process_0_killed(runs: Runs) -> dict:
  import portpicker

  unbroken = runs.root / "two_unbroken"
  runs.finish(unbroken, 2, 2)
  wd = runs.root / "two_broken"
  procs = runs.start(wd, 2, 2, portpicker.pick_unused_port())
  while not steps(wd) and all(p.poll() is None for p in procs):
    time.sleep(0.01)
  at_kill = steps(wd)
  procs[0].send_signal(signal.SIGKILL)
  t = time.monotonic()
  try:
    procs[1].wait(timeout=300)
  except subprocess.TimeoutExpired:
    procs[1].kill()
    procs[1].wait()
  other = {"process_1_rc": procs[1].returncode, "process_1_stopped_after_s": round(time.monotonic() - t, 1),
           "process_1_last_line": last_line(output(procs[1]))}  # fmt: skip
  procs[0].wait()
  outs = runs.finish(wd, 2, 2)
  d = max_diff(wd, unbroken)
  return {"checkpoints_at_kill": at_kill, **other, "resumed_from": resumed_step(outs[0]), "max_abs_diff": d,
          "equal_to_the_unbroken_2_process_run": d <= 1e-4}  # fmt: skip


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--kills", type=int, default=20)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--name", default="faults_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  rng = random.Random(a.seed)
  with tempfile.TemporaryDirectory(prefix="jaxface-faults-") as tmp:
    runs = Runs(Path(tmp))
    unbroken = runs.root / "unbroken"
    runs.finish(unbroken)  # compiles into the cache; the timed run is the next
    shutil.rmtree(unbroken)
    start = time.perf_counter()
    runs.finish(unbroken)
    wall = time.perf_counter() - start
    saved = [(unbroken / "checkpoints" / str(s)).stat().st_mtime for s in steps(unbroken)]
    epoch_s = (saved[-1] - saved[0]) / (len(saved) - 1)
    result = {"unbroken_wall_s": round(wall, 1), "epoch_s": round(epoch_s, 3), "epochs": EPOCHS,
              "steps": EPOCHS * STEPS_PER_EPOCH}  # fmt: skip
    result["kill"] = kills(runs, unbroken, epoch_s, a.kills, rng)
    result["full_disk"] = full_disk(runs, unbroken)
    print(json.dumps(result["full_disk"]), flush=True)
    result["damaged"] = damaged(runs, unbroken)
    print(json.dumps(result["damaged"]), flush=True)
    result["process_0_killed"] = process_0_killed(runs)
    print(json.dumps(result["process_0_killed"]), flush=True)
  k, fd, dm, p0 = result["kill"], result["full_disk"], result["damaged"], result["process_0_killed"]
  targets = {
    "kills_end_equal": all(r["equal"] for r in k),
    "kills_resume_from_the_newest_checkpoint": all(r["resumed_from_the_newest"] for r in k),
    "full_disk_stops_saying_so_then_ends_equal": "skipped" in fd
    or (fd["rc"] != 0 and fd["ends_with_one_error_line"] and fd["says_no_space"] and fd["equal"]),
    "damaged_newest_ends_equal": dm["newest"]["equal"],
    "every_damaged_stops_not_from_scratch": dm["every"]["rc"] != 0 and not dm["every"]["started_from_scratch"],
    "process_0_killed_other_stops_within_60s": p0["process_1_rc"] not in (0, None)
    and p0["process_1_stopped_after_s"] <= 60,
    "process_0_killed_ends_equal": p0["equal_to_the_unbroken_2_process_run"],
  }  # fmt: skip
  print(json.dumps(targets))
  meta = common.provenance("faults", t0, targets=targets)
  common.write(a.name, [result], meta)


if __name__ == "__main__":
  main()
