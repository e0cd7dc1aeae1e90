"""Photos to records: the one loop that ``predict``, ``bulk`` and the video path share, and what a record holds.

``photo_rows`` walks photos in chunks, finds each chunk's faces together, and
yields every photo with its rows: its faces (each one's record, no prediction
yet, and its crop), or one row saying why there are none: the photo cannot
be read, it has no face, or it breaks the detector. A chunk whose detection
fails is retried a photo at a time, so one bad photo is its own error row and
the others are labelled as usual (a chunk of one is not retried). The model's outputs are added to the
face rows later (``Predictor.label``), batched across photos.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from jaxface import faces
from jaxface.faces import image

FIELDS = ("file", "status", "face", "box", "age", "age_low", "age_high", "gender", "p_female", "score", "error")
DETECT_PHOTOS = 8  # photos whose detector views share batches (predict's chunk, and python -m jaxface.bulk's task)

Row = tuple[dict, np.ndarray | None]  # a record and its face's crop (None: a photo's error or no-face row)
Find = Callable[[list[faces.Photo]], list[list[Row]]]  # readable photos -> each one's face rows


def gender(p_female: float) -> str:
  """The label of P(female): the one rule, for photos, video tracks and the served records."""
  return "female" if p_female > 0.5 else "male"


def face_crops(photos: list[faces.Photo], size: int, detect: bool = True, detector: str = "cnn") -> list[list[Row]]:
  """The faces of each readable photo, found by ``detector`` (``faces.detect_many``; the whole photo as one face when
  ``detect`` is False): each one's record (file, status, face, box, score; no prediction yet) and its ``size`` crop."""
  if not detect:
    crops = [[((0, 0, *p.image.size), None, np.asarray(image.to_square(p.image, size)))] for p in photos]
  else:
    found = faces.detect_many([p.image for p in photos], detector)
    crops = [[(f.box, f.score, faces.crop(p.image, f, size)) for f in fs] for p, fs in zip(photos, found, strict=True)]
  return [
    [
      ({"file": p.file, "status": "ok", "face": i, "box": list(box), "score": score}, pixels)
      for i, (box, score, pixels) in enumerate(each)
    ]
    for p, each in zip(photos, crops, strict=True)
  ]


def photo_rows(photos: Iterable[faces.Photo], find: Find, chunk: int = DETECT_PHOTOS) -> Iterator[tuple]:
  """(photo, its rows) for every photo, in order; ``find`` runs on ``chunk`` readable photos at a time."""
  for group in chunks(photos, chunk):
    readable = [p for p in group if not p.error]
    try:
      found = iter(find(readable) if readable else ())
    except Exception as e:  # noqa: BLE001  (a photo that breaks the detector: find which, one at a time)
      found = iter([_failed(e)]) if len(readable) == 1 else _one_by_one(readable, find)
    for photo in group:
      each = photo.error or next(found)
      if isinstance(each, str):
        yield photo, [({"file": photo.file, "status": "error", "error": each}, None)]
      elif not each:
        yield photo, [({"file": photo.file, "status": "no_face"}, None)]
      else:
        yield photo, each


def _one_by_one(photos: list[faces.Photo], find: Find) -> Iterator[list[Row] | str]:
  """Each photo's face rows, or why the detector failed on it."""
  for photo in photos:
    try:
      yield find([photo])[0]
    except Exception as e:  # noqa: BLE001
      yield _failed(e)


def _failed(e: Exception) -> str:
  return f"detection failed ({type(e).__name__}: {e})"


def chunks(items: Iterable, n: int) -> Iterator[list]:
  chunk = []
  for item in items:
    chunk.append(item)
    if len(chunk) == n:
      yield chunk
      chunk = []
  if chunk:
    yield chunk
