"""What ends a run that cannot go on, within seconds, with one line saying why.

- **A signal** (SIGTERM from SLURM or Kubernetes, or Ctrl-C) raises
  KeyboardInterrupt in the main thread, which unwinds the run and waits for the
  checkpoint in flight. A main thread stuck in native code (a collective that
  never completes) never runs that handler, so a watcher thread, woken by the
  signal itself (``signal.set_wakeup_fd``), ends the process after a grace time.
- **A failure in one process of a multi-process run** reaches the others: its
  message goes to the coordination service's key-value store, and each
  process's watcher exits when it sees another's. Without it, the others wait
  in a barrier or a collective for JAX's timeouts (minutes), or for ever.
- **A stalled multi-process run**: when the trainer reports no progress for
  ``stall_s`` seconds, the watcher says where the run was and stops every
  process, instead of waiting for ever in a collective that one process never
  joined.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time

import jax

from jaxface import cli

FAILED_KEY = "jaxface/failed"
POLL_S = 0.5
STOPPING = (signal.SIGTERM, signal.SIGINT)
GRACE_S = 15.0  # after a signal: time for the orderly unwind (the checkpoint in flight) before the hard exit

_watcher: _Watcher | None = None


def _interrupt(signum, frame):
  raise KeyboardInterrupt(f"signal {signum}")  # unwinds like Ctrl-C: the checkpoint in flight is waited for


def start(stall_s: float = 0, *, multi: bool = False, grace_s: float = GRACE_S) -> None:
  """From the main thread; again after ``jax.distributed.initialize`` (which installs a SIGTERM handler of its own),
  with ``multi`` (more than one process) and the stall limit (0: none)."""
  global _watcher
  if _watcher is None:
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    _watcher = _Watcher(r)
    _watcher.start()
  _watcher.stall_s, _watcher.grace_s, _watcher.multi = stall_s, grace_s, multi
  signal.signal(signal.SIGTERM, _interrupt)
  signal.signal(signal.SIGINT, _interrupt)


def beat(where: str) -> None:
  """The run made progress and is now at ``where`` (named in the message if it stalls there)."""
  if _watcher is not None:
    _watcher.last, _watcher.where = time.monotonic(), where


def idle(where: str) -> None:
  """No stall limit from here (a phase whose length is not bounded by a step's: preparing data, finishing)."""
  if _watcher is not None:
    _watcher.last, _watcher.where = None, where


def exit_everywhere(code: int, message: str) -> None:
  """In a multi-process run: tells the others ``message``, then ends this process with ``code``.

  A single process returns, to exit normally. The message should already be printed.
  """
  if jax.process_count() <= 1:
    return
  _stop_all(code, message)


def _stop_all(code: int, message: str, line: str | None = None) -> None:
  _publish(message)
  if jax.process_index() == 0:
    time.sleep(4 * POLL_S)  # process 0 holds the coordination service: the others read the message first
  _hard_exit(code, line)


def _client():
  """The coordination service's client: JAX has no public handle to it, so a JAX that moved it is named."""
  try:
    from jax._src import distributed

    return distributed.global_state.client
  except (ImportError, AttributeError) as e:
    raise RuntimeError(
      f"jax {jax.__version__} has no jax._src.distributed.global_state.client ({e}), which jaxface's multi-process "
      "guard reads; use the jax version in constraints.txt"
    ) from None


def _publish(message: str) -> None:
  client = _client()
  if client is None:
    return
  try:
    client.key_value_set(FAILED_KEY, f"process {jax.process_index()}: {message}")
  except Exception:  # noqa: BLE001 (another process published first; theirs is the cause)
    pass


def _peer_failure() -> str | None:
  client = _client()
  if client is None:
    return None
  try:
    return client.key_value_try_get(FAILED_KEY)
  except Exception:  # noqa: BLE001 (NOT_FOUND: no process has failed)
    return None


def _hard_exit(code: int, line: str | None = None) -> None:
  if line:
    print(line, file=sys.stderr, flush=True)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # skips JAX's shutdown barrier, which would wait for processes that are gone


class _Watcher(threading.Thread):
  def __init__(self, wakeup_fd: int):
    super().__init__(name="jaxface-guard", daemon=True)
    self.fd, self.stall_s, self.grace_s, self.multi = wakeup_fd, 0.0, GRACE_S, False
    self.last: float | None = None
    self.where = "starting"
    self.signalled_at: float | None = None
    self.signum = signal.SIGTERM

  def run(self) -> None:
    while True:
      ready, _, _ = select.select([self.fd], [], [], POLL_S)
      got = os.read(self.fd, 64) if ready else b""  # always drained: a pipe left readable would spin this loop
      if self.signalled_at is None and (first := next((s for s in got if s in STOPPING), None)) is not None:
        self.signalled_at, self.signum = time.monotonic(), first
      now = time.monotonic()
      if self.signalled_at is not None and now - self.signalled_at > self.grace_s:
        _hard_exit(
          128 + self.signum,  # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM
          f"error: stopped by a signal, and the run did not unwind within {self.grace_s:.0f} s (stuck at "
          f"{self.where}): exiting now; rerun the same command to resume from the last checkpoint",
        )
      if not self.multi:
        continue
      if self.stall_s and self.last is not None and now - self.last > self.stall_s:
        line = (
          f"error: no progress for {self.stall_s:.0f} s at {self.where}: a collective that another process never "
          "joined, or a stuck process; stopping every process (rerun to resume from the last checkpoint; "
          "--stall-timeout sets the limit)"
        )
        _stop_all(cli.ERROR, line.removeprefix("error: "), line)
      if (peer := _peer_failure()) is not None and not peer.startswith(f"process {jax.process_index()}:"):
        _hard_exit(cli.ERROR, f"error: another process failed, so this one stops too: {peer}")
