"""Multi-host training on one machine: 2 processes of 2 CPU devices each, through JAX's CPU collectives (gloo).

Each test launches real ``python -m jaxface.train`` processes joined by
``--coordinator``; every process it starts is killed and reaped when the test
ends, passed or failed, so no process keeps the coordinator's port. A busy-loop
process runs beside them: two such runs hung in their collectives on a loaded
machine, and passed on an idle one.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import portpicker
import pytest
from conftest import TINY_WIDTHS, assert_within_spread, relative_differences, xla_flags

STEPS_PER_EPOCH = 6  # the fake archive's full/train split in batches of 8
EPOCHS = 3
FLAGS = ("--epochs", str(EPOCHS), "--input", "device")
TIMEOUT_S = 300


class Launcher:
  """``with Launcher(...) as launch``: launch(workdir, processes, devices_each, *flags) starts processes.

  On exit, passed or failed, every process started is killed and reaped, and its coordinator port is
  checked to be free again.
  """

  def __init__(self, logs: Path, archive, tfds_dir):
    self.logs, self.archive, self.tfds_dir, self.started = logs, archive, tfds_dir, []

  def __enter__(self):
    # CPU load beside the run, at the lowest priority: it takes the cores whenever a process waits, which shifts
    # the processes' timing, without doubling every test's time (the deadlock test below runs one at full priority).
    self.busy = subprocess.Popen([sys.executable, "-c", "import os; os.nice(19)\nwhile True: pass"])
    return self.launch

  def launch(self, workdir: Path, processes: int, devices_each: int, *flags: str, only=None) -> list:
    env = {
      **os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags(devices_each),
    }  # fmt: skip
    args = ["--arch", "custom", "--data", str(self.archive), "--dataset", "full", "--tfds-dir", str(self.tfds_dir),
            "--image-size", "32", "--batch-size", "8", "--widths", json.dumps(TINY_WIDTHS), "--hidden", "16",
            "--workdir", str(workdir), *flags]  # fmt: skip
    port = portpicker.pick_unused_port()
    procs = []
    for i in range(processes) if only is None else only:
      multi = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes), "--process-id", str(i)]
      log = open(self.logs / f"{workdir.name}.{len(self.started)}.p{i}.log", "w+")  # noqa: SIM115 (closed on exit)
      cmd = [sys.executable, "-m", "jaxface.train", *args, *(multi if processes > 1 else [])]
      p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
      p.log, p.port = log, port
      procs.append(p)
      self.started.append(p)
    return procs

  def __exit__(self, *exc):
    self.busy.kill()
    self.busy.wait()
    for p in self.started:
      if p.poll() is None:
        p.kill()
      p.wait()
      p.log.close()
    for port in {p.port for p in self.started}:
      with socket.socket() as s:  # a listener left behind would make this bind fail (TIME_WAIT is allowed)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    return False


def output(p: subprocess.Popen) -> str:
  p.log.flush()
  return Path(p.log.name).read_text()


def finish(procs: list[subprocess.Popen], expect_rc: int = 0) -> list[str]:
  deadline = time.monotonic() + TIMEOUT_S
  for p in procs:
    try:
      p.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      pytest.fail(f"a process ran past {TIMEOUT_S} s; its output:\n{output(p)[-3000:]}")
  outs = [output(p) for p in procs]
  for p, out in zip(procs, outs, strict=True):
    assert p.returncode == expect_rc, out[-3000:]
  return outs


def final_params(workdir: Path) -> dict:
  """The last checkpoint's parameters, restored here, in one process (as evaluate and predict do)."""
  from jaxface.inference import restore

  return restore.load(workdir, "last").params


def params_distance(a: Path, b: Path) -> float:
  """The relative L2 distance of two runs' last weights, leaving out the biases of the convolutions that feed a
  batch-norm: their true gradient is 0 (the batch-norm takes the mean out), so what they get is rounding noise,
  which Adam scales to a step of ~lr whatever its size."""
  import jax

  pa, pb = (jax.tree_util.tree_flatten_with_path(final_params(w))[0] for w in (a, b))
  diff = norm = compared = 0
  for (path, x), (_, y) in zip(pa, pb, strict=True):
    name = jax.tree_util.keystr(path)
    assert np.shape(x) == np.shape(y), name
    if "conv" in name and "bias" in name:
      continue
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    diff, norm, compared = diff + ((x - y) ** 2).sum(), norm + (y**2).sum(), compared + x.size
  assert compared > 5000  # the custom CNN's weights, heads included
  return float((diff / norm) ** 0.5)


KEYS = ("train_loss", "val_loss", "val_age_mae", "val_gender_bce")


def distances(a: Path, b: Path) -> dict:
  """How far run ``a`` ended from run ``b``: its weights and its last epoch's metrics, relative."""
  ha, hb = (json.loads((w / "history.json").read_text())[-1] for w in (a, b))
  return {"params": params_distance(a, b), **relative_differences(ha, hb, KEYS)}


def shares(outs: list[str], split: str) -> list[list[int]]:
  """The examples of ``split`` each process says it read (``feeds.log_share``), and the split's size."""
  got, sizes = [], set()
  for out in outs:
    (m,) = re.findall(rf"reads {split} examples \[(\d+):(\d+):(\d+)\] of (\d+)", out)
    start, stop, step, n = map(int, m)
    got.append(list(range(start, stop, step)))
    sizes.add(n)
  (n,) = sizes
  return got, n


def assert_tiles(outs: list[str], split: str) -> None:
  """The processes' shares are disjoint and cover the split."""
  got, n = shares(outs, split)
  flat = sorted(i for g in got for i in g)
  assert len(flat) == len(set(flat)), f"{split}: an example read twice: {got}"
  assert flat == list(range(n)), (split, n, got)
  assert all(got), f"{split}: a process read nothing: {got}"


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory, fake_archive, tfds_dir):
  """--input device, 3 epochs: 2 processes of 2 devices, 1 process of 4, and 1 process of 2 (their workdirs and
  outputs), and ``spread``: how far 1 x 2 ended from 1 x 4, the honest spread the other comparisons are held to.

  (1 device against 2 and 4 in one process, streamed, is tests/test_train.py's test_four_devices_match_one.)
  """
  d = tmp_path_factory.mktemp("unbroken")
  with Launcher(d, fake_archive[0], tfds_dir) as launch:
    runs = {"two": finish(launch(d / "two", 2, 2, *FLAGS))}
    single = {name: launch(d / name, 1, n, *FLAGS) for name, n in (("one", 4), ("pair", 2))}  # side by side
    runs |= {name: finish(procs) for name, procs in single.items()}
  return {**{name: (d / name, out) for name, out in runs.items()}, "spread": distances(d / "pair", d / "one")}


def test_two_processes_train_as_one_process_of_four_devices(unbroken):
  """Each process reads its devices' blocks; the run ends as close to 1 process x 4 devices as 1 x 2 does."""
  (two, logs), (one, _) = unbroken["two"], unbroken["one"]
  assert_within_spread(distances(two, one), unbroken["spread"], "2 x 2 against 1 x 4")
  h2, h1 = (json.loads((w / "history.json").read_text()) for w in (two, one))
  assert [e["step"] for e in h2] == [e["step"] for e in h1] == [STEPS_PER_EPOCH * (i + 1) for i in range(EPOCHS)]
  assert_tiles(logs, "train")
  assert_tiles(logs, "validation")  # each validation example evaluated once, over both processes
  run = json.loads((two / "run.json").read_text())
  assert run["device"]["processes"] == 2 and run["device"]["count"] == 4
  assert "[process 1/2]" in logs[1] and f"epoch {EPOCHS}/{EPOCHS}" not in logs[1]  # only process 0 prints epochs


def test_stream_input_trains_in_two_processes(tmp_path, fake_archive, tfds_dir):
  """--input stream: each process streams and shuffles its own share of every split, so the batches differ from
  one process's (no equality to test); the shares tile, the steps match, and the run's state is one."""
  with Launcher(tmp_path, fake_archive[0], tfds_dir) as launch:
    two = finish(launch(tmp_path / "two", 2, 2, "--epochs", "2", "--input", "stream"))
  assert_tiles(two, "validation")  # each validation example evaluated once, over both processes
  got, n = shares(two, "train")
  assert not set(got[0]) & set(got[1]) and len(got[0]) == len(got[1]) == n // 2  # equal steps, none read twice
  h = json.loads((tmp_path / "two" / "history.json").read_text())
  assert [e["step"] for e in h] == [n // 8 * (i + 1) for i in range(2)], h
  assert all(np.isfinite(e[k]) for e in h for k in ("train_loss", "val_loss", "val_age_mae")), h
  import jax

  assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(final_params(tmp_path / "two")))


def test_killed_after_an_epoch_and_relaunched_ends_as_the_unbroken_run(unbroken, tmp_path, fake_archive, tfds_dir):
  with Launcher(tmp_path, fake_archive[0], tfds_dir) as launch:
    procs = launch(tmp_path / "broken", 2, 2, *FLAGS)
    ckpts, deadline = tmp_path / "broken" / "checkpoints", time.monotonic() + TIMEOUT_S
    while not (ckpts / str(STEPS_PER_EPOCH)).is_dir():
      assert all(p.poll() is None for p in procs), [output(p)[-2000:] for p in procs]
      assert time.monotonic() < deadline, "epoch 1's checkpoint never appeared"
      time.sleep(0.02)
    for p in procs:
      p.send_signal(signal.SIGKILL)
    for p in procs:
      p.wait()
    assert not (ckpts / str(EPOCHS * STEPS_PER_EPOCH)).exists(), "the run ended before it was killed"
    again = finish(launch(tmp_path / "broken", 2, 2, *FLAGS))
  assert all(re.search(r"Resumed from .* at epoch [12] \(step (6|12)\)", out) for out in again), again[0][-2000:]
  assert_within_spread(
    distances(tmp_path / "broken", unbroken["two"][0]), unbroken["spread"], "resumed against unbroken"
  )
  h = json.loads((tmp_path / "broken" / "history.json").read_text())
  assert [e["epoch"] for e in h] == list(range(1, EPOCHS + 1))


def test_both_feeds_loops_do_not_deadlock_under_load(tmp_path):
  """Many small steps and evaluations of both feeds (10 epochs) in 2 processes of 2 devices, on a loaded host.

  Before the step carried the metric sums (``metrics.add``), the trainer's eager add between the steps'
  collective programs deadlocked such runs, or timed out in Gloo (2 of 3 of this script's runs on a loaded
  2-core host; the fixed feeds finished 4 of 4 there).
  """
  port = portpicker.pick_unused_port()
  script = Path(__file__).with_name("multihost_feeds.py")
  # Load: a busy loop, unless the other pytest-xdist workers already load the host
  loaded = "PYTEST_XDIST_WORKER" in os.environ
  busy = None if loaded else subprocess.Popen([sys.executable, "-c", "while True: pass"])
  logs = [open(tmp_path / f"p{i}.log", "w+") for i in range(2)]  # noqa: SIM115 (closed by _reap)
  procs = [
    subprocess.Popen([sys.executable, str(script), str(port), str(i), "10"], stdout=log, stderr=subprocess.STDOUT)
    for i, log in enumerate(logs)
  ]
  try:
    outs = _reap(procs, logs, within_s=TIMEOUT_S)
  finally:
    if busy is not None:
      busy.kill()
      busy.wait()
  for i, (p, out) in enumerate(zip(procs, outs, strict=True)):
    assert p.returncode == 0 and out.rstrip().endswith("done"), f"process {i} (rc {p.returncode}):\n{out[-3000:]}"


def _stuck_job(tmp_path, stall_s: float) -> tuple[list, list]:
  """The two processes of tests/multihost_stuck.py, once process 0 waits in its collective; and their logs."""
  port = portpicker.pick_unused_port()
  logs = [open(tmp_path / f"stuck{i}.log", "w+") for i in range(2)]  # noqa: SIM115 (closed by _reap)
  script = Path(__file__).with_name("multihost_stuck.py")
  procs = [
    subprocess.Popen(
      [sys.executable, str(script), str(port), str(i), str(stall_s)], stdout=log, stderr=subprocess.STDOUT
    )
    for i, log in enumerate(logs)
  ]
  deadline = time.monotonic() + 120
  while "stuck" not in Path(logs[0].name).read_text():
    assert procs[0].poll() is None and time.monotonic() < deadline, Path(logs[0].name).read_text()[-2000:]
    time.sleep(0.1)
  return procs, logs


def _reap(procs: list, logs: list, within_s: float) -> list[str]:
  """Waits up to ``within_s`` for every process (a test failure if one is still running); their outputs."""
  deadline = time.monotonic() + within_s
  try:
    for p in procs:
      p.wait(timeout=max(0.1, deadline - time.monotonic()))
  except subprocess.TimeoutExpired:
    pass
  running = [p.poll() is None for p in procs]
  for p in procs:
    p.kill()
    p.wait()
  outs = [Path(log.name).read_text() for log in logs]
  for log in logs:
    log.close()
  assert not any(running), f"still running after {within_s} s: {running}\n" + "\n---\n".join(o[-2000:] for o in outs)
  return outs


def test_sigterm_ends_a_process_stuck_in_a_collective(tmp_path):
  """The main thread waits in native code, where Python's handler never runs: the guard's watcher exits it."""
  procs, logs = _stuck_job(tmp_path, stall_s=0)
  t = time.monotonic()
  procs[0].send_signal(signal.SIGTERM)
  procs[0].wait(timeout=30)
  took = time.monotonic() - t
  procs[1].send_signal(signal.SIGTERM)
  out0, _ = _reap(procs, logs, within_s=30)
  assert procs[0].returncode == 128 + signal.SIGTERM and took < 15, (procs[0].returncode, took, out0[-2000:])
  assert "stopped by a signal" in out0 and "the collective that process 1 never joins" in out0
  assert "the collective returned" not in out0


def test_a_stalled_collective_stops_every_process_with_the_reason(tmp_path):
  procs, logs = _stuck_job(tmp_path, stall_s=3)
  out0, out1 = _reap(procs, logs, within_s=60)
  assert [p.returncode for p in procs] == [2, 2], (out0[-2000:], out1[-2000:])
  assert "no progress for 3 s at the collective that process 1 never joins" in out0
  assert "another process failed, so this one stops too: process 0: no progress for 3 s" in out1


def test_a_failure_on_process_0_alone_stops_every_process_within_a_minute(tmp_path, fake_archive, tfds_dir):
  """A busy workdir only process 0 checks: process 1 waits in a barrier, and must stop too, saying why."""
  from jaxface.training import workdir_lock

  (tmp_path / "busy").mkdir()
  with workdir_lock.hold(tmp_path / "busy"), Launcher(tmp_path, fake_archive[0], tfds_dir) as launch:
    t = time.monotonic()
    procs = launch(tmp_path / "busy", 2, 2, *FLAGS)
    outs = finish(procs, expect_rc=2)
    took = time.monotonic() - t
  assert took < 60, took
  assert "is in use by another training run" in outs[0].splitlines()[-1]
  assert "another process failed" in outs[1] and "is in use by another training run" in outs[1].splitlines()[-1]


def test_a_damaged_checkpoint_is_set_aside_once_and_every_process_resumes_from_the_one_before(
  unbroken, tmp_path, fake_archive, tfds_dir
):
  import shutil

  from test_reliability import _truncate_the_state_files

  shutil.copytree(unbroken["two"][0], tmp_path / "damaged")
  last = EPOCHS * STEPS_PER_EPOCH
  _truncate_the_state_files(tmp_path / "damaged" / "checkpoints" / str(last))
  with Launcher(tmp_path, fake_archive[0], tfds_dir) as launch:
    outs = finish(launch(tmp_path / "damaged", 2, 2, *FLAGS))
  resumed = last - STEPS_PER_EPOCH
  assert all("Resumed from" in out and f"(step {resumed})" in out for out in outs), outs[1][-2000:]
  assert sorted(p.name for p in (tmp_path / "damaged" / "checkpoints").glob("*.unreadable*")) == [f"{last}.unreadable"]
  assert_within_spread(
    distances(tmp_path / "damaged", unbroken["two"][0]), unbroken["spread"], "resumed against unbroken"
  )


def test_a_process_whose_peers_never_come_stops_saying_so(tmp_path, fake_archive, tfds_dir):
  """Process 1 is never started: process 0 stops at --join-timeout with one line, not JAX's native abort."""
  with Launcher(tmp_path, fake_archive[0], tfds_dir) as launch:
    start = time.monotonic()
    (p0,) = launch(tmp_path / "lonely", 2, 2, *FLAGS, "--join-timeout", "5", only=[0])
    p0.wait(timeout=120)
    out = output(p0)
  assert p0.returncode == 2 and time.monotonic() - start < 60, out[-2000:]
  assert "error: the job did not come together within 5 s (coordinator 127.0.0.1:" in out, out[-2000:]
  assert "Check failure" not in out


@pytest.mark.parametrize("n, hosts", [(55, 2), (7, 2), (10, 3), (2, 3)])
def test_stream_shares_tile_each_split(n, hosts):
  """--input stream: each host every hosts-th example; train leaves out n mod hosts (equal steps), validation none."""
  from jaxface.data import pipeline

  examples = list(range(n))
  train = [examples[pipeline.share(n, i, hosts, equal=True)] for i in range(hosts)]
  val = [examples[pipeline.share(n, i, hosts, equal=False)] for i in range(hosts)]
  assert sorted(sum(val, [])) == examples
  assert sorted(sum(train, [])) == examples[: n - n % hosts] and len({len(t) for t in train}) == 1
