"""A manifest's images: checked in parallel workers, then made into training faces by one crop policy.

Crop policies (``CROPS``):
- ``detect`` (the default): each photo goes through the project's detector
  and ``faces.crop``, so a training face is framed as ``predict`` frames the
  faces it finds. A row with a ``box`` takes the detected face that overlaps
  it most (IoU >= MIN_IOU), or the box itself when none does. A photo with no
  face, or with several faces and no box, is skipped with its reason.
- ``as-is``: images that are already aligned face crops (UTKFace, AFAD,
  APPA-REAL's ``*_face.jpg``) are centre-squared and resized, as the utk_face
  builder stores UTKFace. A ``box`` is ignored.

Only the content hash, the labels and where to crop are kept per image, never
the pixels: the build streams.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from jaxface.data import manifest as manifest_lib
from jaxface.data import parallel
from jaxface.data import source as source_lib
from jaxface.faces import image
from jaxface.faces.photos import FORMATS

CROPS = ("detect", "as-is")
MIN_IOU = 0.3  # a detected face is the row's face when it overlaps the row's box this much
DETECT_CHUNK = 16  # photos detected together (their views share the detector's batches)


def _read(job: tuple[str, bool]) -> tuple[str, str | None, np.ndarray | None]:
  """(sha256, why it cannot be used or None, the RGB pixels when asked for) of one file. Runs in a worker."""
  path, pixels = job
  try:
    data = Path(path).read_bytes()
  except FileNotFoundError:
    return "", "missing", None
  except OSError as e:
    return "", f"cannot be read ({e.strerror or e})", None
  if not data:
    return "", "empty file (0 bytes)", None
  sha = hashlib.sha256(data).hexdigest()
  try:
    with Image.open(io.BytesIO(data), formats=FORMATS) as img:
      if not pixels:
        img.draft("RGB", (64, 64))  # JPEG: decodes every block at 1/8 scale, so a truncated file still fails
        img.load()
        return sha, None, None
      return sha, None, np.asarray(image.upright(img))
  except Exception as e:  # PIL raises several types for bad bytes
    return sha, f"does not decode as an image ({type(e).__name__}: {e})", None


def _iou(a, b) -> float:
  ax, ay, aw, ah = a
  bx, by, bw, bh = b
  w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
  h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
  return w * h / (aw * ah + bw * bh - w * h)


def choose(faces: list, box) -> tuple[object | None, str | None]:
  """The face to crop, from a photo's detected faces and the row's box (or None); or why there is none."""
  if box is not None:
    best = max(faces, key=lambda f: _iou(f.box, box), default=None)
    return (best, None) if best is not None and _iou(best.box, box) >= MIN_IOU else (tuple(box), None)
  if not faces:
    return None, "no face found"
  if len(faces) > 1:
    return None, f"{len(faces)} faces found and no box to choose one"
  return faces[0], None


def scan(path: Path, rows: list[manifest_lib.Row], crop: str = "detect", workers: int | None = None):
  """The manifest's usable images as records, and the skipped ones with reasons.

  A missing file is an error (ManifestError naming the row): the manifest is wrong, not the image.
  """
  if crop not in CROPS:
    raise ValueError(f"unknown crop policy {crop!r}; choose one of {CROPS}")
  root = path.parent
  detect = crop == "detect"
  detector = None
  if detect:
    from jaxface.faces import cnn
    from jaxface.faces.detect import from_detection

    detector = cnn.default()
  records, skips, waiting = [], [], []

  def flush():
    found = detector.detect_many([Image.fromarray(px) for _, _, px in waiting]) if waiting else []
    for (row, sha, _), dets in zip(waiting, found, strict=True):
      face, why = choose([from_detection(d) for d in dets], row.box)
      _add(row, sha, face, why)
    waiting.clear()

  def _add(row, sha, face, why):
    if why is not None:
      logging.warning("Skipping %s: %s", row.path, why)
      skips.append(source_lib.Skip(row.path, why))
      return
    records.append(
      source_lib.Record(
        row.path, sha, row.labels(), path=root / row.path, subject=row.subject, split=row.split,
        face=face, group=row.group, source=row.source,
      )
    )  # fmt: skip

  jobs = ((str(root / r.path), detect) for r in rows)
  for row, (sha, why, px) in zip(rows, parallel.ordered_map(_read, jobs, workers=workers), strict=True):
    if why == "missing":
      raise manifest_lib.ManifestError(f"{path}, line {row.line}: {row.path}: no such file under {root}")
    if why is not None or not detect:
      _add(row, sha, None, why)
      continue
    waiting.append((row, sha, px))
    if len(waiting) == DETECT_CHUNK:
      flush()
  flush()
  return records, skips


def face_pixels(record: source_lib.Record, size: int) -> np.ndarray:
  """The (size, size, 3) uint8 training face of a record, by its crop. Runs in a worker."""
  from jaxface.faces.crop import crop

  data = record.read()
  if record.face is None:
    return source_lib.decode(data, size)
  with Image.open(io.BytesIO(data), formats=FORMATS) as img:
    return crop(image.upright(img), record.face, size)


def faces(records: list[source_lib.Record], size: int, workers: int | None = None):
  """``face_pixels`` of every record, in order, decoded and cropped in worker processes."""
  return parallel.ordered_map(functools.partial(face_pixels, size=size), records, workers=workers)
