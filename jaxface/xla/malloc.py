"""glibc's malloc, set for XLA:CPU in the process of a ``python -m jaxface.<verb>``, before anything else loads.

- Fewer arenas (``ARENAS``): glibc gives each thread of XLA's pools an arena of its own by default, and each
  keeps the memory freed into it: a ``predict`` process's peak grows with them.
- Transparent huge pages for the verbs that train (``HUGEPAGE_VERBS``): XLA:CPU allocates an executable's
  temporary buffers afresh on every run, and glibc maps a large allocation anew each time, so the kernel faults
  in and zeroes every 4 KiB page of it again, and a training step spends much of its time in the kernel. glibc's
  ``glibc.malloc.hugetlb=1`` asks for 2 MiB pages where the kernel allows them
  (``/sys/kernel/mm/transparent_hugepage/enabled``: ``always`` or ``madvise``). glibc reads its tunables only when
  a process starts, so the verb's process replaces itself (``os.execve``: the same process id, command line and
  streams) with the tunable set. Short runs (``predict``) zero more with 2 MiB pages than they save, so they keep
  4 KiB ones. Measured: benchmarks/results/malloc_cpu.json.

``JAXFACE_MALLOC=0`` leaves malloc as it is; so do Linux without glibc (or a glibc older than 2.35, which has no
such tunable) and other systems, and a ``GLIBC_TUNABLES`` that sets ``glibc.malloc.hugetlb`` already.
"""

from __future__ import annotations

import os
import sys

ARENAS = 2
HUGEPAGE_VERBS = ("jaxface.train",)
TUNABLE = "glibc.malloc.hugetlb"
GLIBC_MIN = (2, 35)
_M_ARENA_MAX = -8  # glibc's malloc.h


def glibc() -> bool:
  """Whether this process runs on a glibc with the tunable."""
  if not sys.platform.startswith("linux"):
    return False
  try:
    name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
    return name == "glibc" and tuple(int(v) for v in version.split(".")[:2]) >= GLIBC_MIN
  except (AttributeError, OSError, ValueError):  # no such confstr (musl), or an odd version string
    return False


def command_line() -> list[str]:
  """This process's exact command line, interpreter flags included; [] where it cannot be read."""
  try:
    with open("/proc/self/cmdline", "rb") as f:
      return [a.decode(errors="surrogateescape") for a in f.read().split(b"\0")[:-1]]
  except OSError:
    return []


def verb(argv: list[str]) -> str | None:
  """The module a ``python [flags] -m MODULE ...`` command line runs, or None."""
  for i, a in enumerate(argv[1:-1], start=1):
    if a == "-m":
      return argv[i + 1]
  return None


def wants_hugepages(argv: list[str], environ) -> bool:
  return verb(argv) in HUGEPAGE_VERBS and TUNABLE not in environ.get("GLIBC_TUNABLES", "")


def environ_with_hugepages(environ) -> dict:
  """``environ`` with ``glibc.malloc.hugetlb=1`` added to its GLIBC_TUNABLES (those already there kept)."""
  tunables = ":".join(t for t in (environ.get("GLIBC_TUNABLES"), f"{TUNABLE}=1") if t)
  return {**environ, "GLIBC_TUNABLES": tunables}


def setup() -> None:
  """Sets malloc up for this verb's process (it may start the process again); otherwise returns."""
  if os.environ.get("JAXFACE_MALLOC") == "0" or not glibc():
    return
  argv = command_line()
  if argv and sys.executable and wants_hugepages(argv, os.environ):
    try:
      os.execve(sys.executable, [sys.executable, *argv[1:]], environ_with_hugepages(os.environ))
    except OSError:  # the interpreter cannot be started again: this process goes on with 4 KiB pages
      pass
  import ctypes

  ctypes.CDLL(None).mallopt(_M_ARENA_MAX, ARENAS)
