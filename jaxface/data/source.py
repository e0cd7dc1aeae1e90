"""Reading a UTKFace download: the archive or its extracted folder.

``scan`` reads every regular file once, hashes its bytes, parses its labels and
checks that it decodes as an image. Files that fail are returned as skips with
the reason, never dropped silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from jaxface.data import labels as labels_lib
from jaxface.faces import image

ARCHIVE_NAME = "UTKFace.tar.gz"
FOLDER_NAME = "UTKFace"
ENV_VAR = "JAXFACE_DATA"

HOW_TO_GET = f"""\
UTKFace is not downloaded automatically: its license (non-commercial research
only; cite Zhang, Song & Qi, CVPR 2017) asks each user to fetch it.
  1. Download the "Aligned & Cropped Faces" archive {ARCHIVE_NAME} from the
     official UTKFace page (https://susanqq.github.io/UTKFace/).
  2. Point jaxface at it, in one of these ways:
     --data /path/to/{ARCHIVE_NAME}   (or the extracted {FOLDER_NAME}/ folder)
     export {ENV_VAR}=/path/to/{ARCHIVE_NAME}
     or put it in TFDS's manual download folder,
     <tfds data dir>/downloads/manual/{ARCHIVE_NAME}."""


class DataNotFoundError(FileNotFoundError):
  pass


class DataError(ValueError):
  """The data was found but cannot be used: a truncated archive, no usable images, too few for a config."""


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
  """One usable image: of the UTKFace download (its bytes held), or of a manifest (read from ``path`` when needed)."""

  file_name: str  # the example's key: UTKFace's base name, or the manifest's relative path
  sha256: str
  labels: labels_lib.Labels
  data: bytes = dataclasses.field(default=b"", repr=False)
  path: Path | None = None
  subject: str = ""
  split: str = ""
  face: tuple | None = None  # where to crop: an (x, y, w, h) box, or a detected Face; None: the image as it is
  group: str = ""
  source: str = ""

  def read(self) -> bytes:
    return self.data if self.path is None else self.path.read_bytes()


@dataclasses.dataclass(frozen=True)
class Skip:
  file_name: str
  reason: str


def locate(path: str | os.PathLike | None) -> Path:
  """The archive or image folder that ``path`` (or $JAXFACE_DATA) names."""
  if path is None:
    path = os.environ.get(ENV_VAR) or None
  if path is None:
    raise DataNotFoundError(f"No UTKFace data given (--data or ${ENV_VAR}).\n{HOW_TO_GET}")
  p = Path(path).expanduser()
  if p.is_dir():
    for candidate in (p / ARCHIVE_NAME, p / FOLDER_NAME):
      if candidate.exists():
        return candidate
    return p  # a folder of images
  if p.is_file():
    if not tarfile.is_tarfile(p):
      raise DataNotFoundError(f"{p}: not a tar archive; expected {ARCHIVE_NAME} or a folder of images.")
    return p
  raise DataNotFoundError(f"{p}: no such file or folder.\n{HOW_TO_GET}")


def iter_files(path: Path) -> Iterator[tuple[str, bytes]]:
  """(base name, bytes) of every regular file in an archive or folder, sorted by name.

  An archive is read in its own order, in one pass, then sorted in memory: a
  compressed tar read in name order would rewind its stream for every member
  out of order (231 s instead of 0.5 s for 5,412 files packed unsorted).
  """
  if path.is_dir():
    files = sorted(f for f in path.rglob("*") if f.is_file())
    for f in files:
      yield f.name, f.read_bytes()
    return
  try:
    with tarfile.open(path, "r:*") as tar:
      members = [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
  except (EOFError, tarfile.TarError, zlib.error, OSError) as e:
    raise DataError(
      f"{path}: the archive is truncated or corrupt ({type(e).__name__}: {e}); download it again"
    ) from None
  for name, data in sorted(members, key=lambda m: m[0]):
    yield os.path.basename(name), data


def decode(data: bytes, size: int | None = None) -> np.ndarray:
  """uint8 RGB pixels of an encoded image (EXIF orientation applied); square and ``size`` when given."""
  with Image.open(io.BytesIO(data)) as img:
    img = image.upright(img)
  return np.asarray(image.to_square(img, size) if size is not None else img, dtype=np.uint8)


def scan(path: Path) -> tuple[list[Record], list[Skip]]:
  """Every file of the download, as usable records or skips with a reason."""
  records, skips = [], []
  seen = set()
  for name, data in iter_files(path):
    reason = None
    if name in seen:
      reason = "a file of the same name was already read"
    elif not data:
      reason = "empty file (0 bytes)"
    else:
      try:
        labels = labels_lib.parse_file_name(name)
      except labels_lib.LabelError as e:
        reason = str(e).split(": ", 1)[1]
      else:
        try:
          decode(data)
        except Exception as e:  # PIL raises several types for bad bytes
          reason = f"does not decode as an image ({type(e).__name__}: {e})"
    seen.add(name)
    if reason is not None:
      logging.warning("Skipping %s: %s", name, reason)
      skips.append(Skip(name, reason))
      continue
    records.append(Record(name, hashlib.sha256(data).hexdigest(), labels, data))
  return records, skips
