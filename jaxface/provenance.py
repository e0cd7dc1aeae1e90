"""Where a number came from: command, git commit, machine, device, date, wall time."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

# Result folders are written by the runs themselves: changes there do not make the code dirty.
RESULT_PATHS = ("benchmarks/results", "experiments/results")
# Untracked files with these suffixes are code a run may have used (a new module, say): they make it dirty.
SOURCE_SUFFIXES = (".py", ".sh", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".txt", ".json")


def git_commit(where: str | Path | None = None) -> str:
  """HEAD's commit, with '+dirty' when files outside the result folders differ from it (tracked files, or untracked
  source files: ``SOURCE_SUFFIXES``); 'unknown' outside git.

  ``where``: a folder in the checkout (default: this package's).
  """
  here = Path(where or Path(__file__).resolve().parent)
  git = lambda *args: subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, check=True).stdout
  try:
    head = git("rev-parse", "HEAD").strip()
    status = git(
      "status", "--porcelain", "--untracked-files=all", "--", ":/", *(f":(top,exclude){p}" for p in RESULT_PATHS)
    )
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  dirty = [
    line for line in status.splitlines() if not line.startswith("??") or line.rstrip('"').endswith(SOURCE_SUFFIXES)
  ]
  return head + ("+dirty" if dirty else "")


def short_commit(commit: str) -> str:
  """The first 10 characters of a commit, keeping its '+dirty' (tables show this)."""
  return commit[:10] + ("+dirty" if commit.endswith("+dirty") else "")


def host() -> dict:
  """The CPU a result came from: XLA's CPU kernels differ by instruction set, so "x86_64" is not enough."""
  info = {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
  if hasattr(os, "sched_getaffinity"):
    info["cores_usable"] = len(os.sched_getaffinity(0))
  try:
    text = Path("/proc/cpuinfo").read_text()
  except OSError:
    return info
  fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
  fields = {k.strip(): v.strip() for k, v in fields.items()}
  info["cpu"] = fields.get("model name", info["cpu"])
  info["isa"] = sorted(f for f in fields.get("flags", "").split() if f.startswith(("avx", "amx", "fma")))
  return info


def allocator() -> dict:
  """How this process allocates memory (jaxface.xla.malloc): glibc's tunables and the kernel's transparent huge
  pages move CPU timings."""
  try:
    modes = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().split()
    thp = next((m.strip("[]") for m in modes if m.startswith("[")), None)
  except OSError:
    thp = None
  return {"glibc_tunables": os.environ.get("GLIBC_TUNABLES"), "transparent_hugepages": thp}


def devices() -> dict:
  import jax

  devs = jax.devices()
  return {
    "platform": devs[0].platform,
    "kind": devs[0].device_kind,
    "count": len(devs),
    "processes": jax.process_count(),
  }


def command(argv: list[str]) -> str:
  """The shell command that ran: ``python -m jaxface.train ...`` for the package's own modules."""
  if argv and argv[0].endswith(".py"):
    path = Path(argv[0]).resolve()
    package = Path(__file__).resolve().parent
    if path.is_relative_to(package):
      module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
      argv = ["-m", module.removesuffix(".__main__"), *argv[1:]]
    return " ".join(shlex.quote(a) for a in ["python", *argv])
  return " ".join(map(shlex.quote, argv))


def record(wall_s: float | None = None, argv: list[str] | None = None, device: bool = True) -> dict:
  """Provenance of a result, to store beside it (``device=False``: without importing jax)."""
  return {
    "command": command(list(sys.argv if argv is None else argv)),
    "git_commit": git_commit(),
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "machine": {**host(), "python": platform.python_version(), "allocator": allocator()},
    "device": devices() if device else None,
    "wall_s": None if wall_s is None else round(wall_s, 2),
  }
