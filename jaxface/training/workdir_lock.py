"""One training run per workdir: an exclusive lock that names its holder.

The lock is ``flock`` on ``<workdir>/.lock``: the kernel releases it when its
process dies, however it dies, so a killed run never blocks a resume. The
file holds the holder's PID, host and start time, for the message that the
second run gets.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
from pathlib import Path


class WorkdirBusyError(RuntimeError):
  pass


@contextlib.contextmanager
def hold(workdir: Path):
  path = Path(workdir) / ".lock"
  f = open(path, "a+")
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    f.seek(0)
    holder = f.read().strip()
    f.close()
    try:
      h = json.loads(holder)
      who = f"PID {h['pid']} on {h['host']}, started {h['started']}"
    except (ValueError, KeyError):
      who = "another process"
    raise WorkdirBusyError(
      f"{workdir} is in use by another training run ({who}); wait for it, or use another --workdir"
    ) from None
  try:
    f.seek(0)
    f.truncate()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}) + "\n")
    f.flush()
    yield
  finally:
    f.truncate(0)
    fcntl.flock(f, fcntl.LOCK_UN)
    f.close()
