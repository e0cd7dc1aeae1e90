"""A tiny UTKFace-style archive made of random pixels, with every awkward case real copies have."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

# (age, gender, race) per stratum-covering good file; 5 per age band x gender.
_AGES = (3, 15, 25, 33, 45, 52, 65, 72, 85, 90)


def _jpeg(rng: np.random.Generator, size=(200, 200), mode="RGB") -> bytes:
  shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
  img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
  buf = io.BytesIO()
  img.save(buf, format="JPEG", quality=90)
  return buf.getvalue()


def files(seed: int = 0) -> tuple[dict[str, bytes], dict]:
  """File name -> bytes, and what a correct reader must make of them."""
  rng = np.random.default_rng(seed)
  out = {}
  i = 0
  for age in _AGES:
    for gender in (0, 1):
      for k in range(3):
        out[f"{age}_{gender}_{(i + k) % 5}_2017011{i:010d}{k}.jpg.chip.jpg"] = _jpeg(rng)
      i += 1
  malformed = {
    "24_0_1_20170116220224657 .jpg.chip.jpg": (24, 0, 1),  # space
    "55_0_0_20170116232725357jpg.chip.jpg": (55, 0, 0),  # missing dot
    "39_1_20170116174525125.jpg.chip.jpg": (39, 1, -1),  # no race
    "61_1_20170109142408075.jpg.chip.jpg": (61, 1, -1),  # no race
    "14_0_0_2017011022340900.jpg.chip.jpg": (14, 0, 0),  # 16-digit timestamp
    "28_1_2_201701161846515488.jpg.chip.jpg": (28, 1, 2),  # 18-digit timestamp
  }
  for name in malformed:
    out[name] = _jpeg(rng)
  out["30_1_3_20170119999999999.jpg.chip.jpg"] = _jpeg(rng, mode="L")  # grayscale
  out["31_0_3_20170119999999998.jpg.chip.jpg"] = _jpeg(rng, size=(150, 180))  # not 200x200
  same = _jpeg(rng)
  out["40_0_0_20170110000000001.jpg.chip.jpg"] = same  # duplicate pair, conflicting gender
  out["40_1_0_20170110000000002.jpg.chip.jpg"] = same
  agree = _jpeg(rng)
  out["26_1_0_20170110000000003.jpg.chip.jpg"] = agree  # duplicate pair, same labels
  out["26_1_0_20170110000000004.jpg.chip.jpg"] = agree
  out["22_0_0_20170110000000005.jpg.chip.jpg"] = b""  # zero bytes
  out["23_1_0_20170110000000006.jpg.chip.jpg"] = b"this is not an image\n"
  out["notes.txt"] = b"no labels in this name\n"
  expect = {
    "malformed": malformed,
    "skipped": {
      "22_0_0_20170110000000005.jpg.chip.jpg",
      "23_1_0_20170110000000006.jpg.chip.jpg",
      "notes.txt",
    },
    "conflicting": {"40_0_0_20170110000000001.jpg.chip.jpg", "40_1_0_20170110000000002.jpg.chip.jpg"},
    "dropped_copy": "26_1_0_20170110000000004.jpg.chip.jpg",
  }
  expect["usable"] = len(out) - len(expect["skipped"]) - 3  # conflicting pair and one agreeing copy
  return out, expect


def write_archive(path: Path, seed: int = 0) -> dict:
  """Writes UTKFace.tar.gz with a UTKFace/ folder, as the official download has."""
  contents, expect = files(seed)
  with tarfile.open(path, "w:gz") as tar:
    for name, data in contents.items():
      info = tarfile.TarInfo(f"UTKFace/{name}")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return expect


def write_folder(path: Path, seed: int = 0) -> dict:
  contents, expect = files(seed)
  path.mkdir(parents=True, exist_ok=True)
  for name, data in contents.items():
    (path / name).write_bytes(data)
  return expect


def extract_flat(archive: Path, dest: Path) -> Path:
  """The archive's files, extracted flat into ``dest``: a manifest written there lists UTKFace's own names."""
  dest.mkdir(parents=True)
  with tarfile.open(archive) as tar:
    for m in tar:
      if m.isfile():
        (dest / m.name.split("/")[-1]).write_bytes(tar.extractfile(m).read())
  return dest
