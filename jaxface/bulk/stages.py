"""The two stages of a bulk run, as Ray Data callable classes over Arrow batches (no Ray import here).

``Crops`` (CPU): photos -> one row per face, with its crop as bytes; a photo without a face, or one that cannot be
read or detected, is one row with its status (``records.photo_rows``, the loop ``predict`` runs). ``Labels``: those
rows -> ``predict``'s records, the model run on the faces' crops in batches. Both are made once per actor, so the
detector and the model compile once per worker.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from jaxface import faces
from jaxface.inference import records
from jaxface.inference.predictor import Predictor
from jaxface.xla import compile_cache

_TYPES = {
  "file": pa.string(), "status": pa.string(), "face": pa.int32(), "box": pa.list_(pa.int32()),
  "age": pa.float64(), "age_low": pa.float64(), "age_high": pa.float64(), "gender": pa.string(),
  "p_female": pa.float64(), "score": pa.float64(), "error": pa.string(),
}  # fmt: skip
# The Parquet files' schema: predict's fields, in its order.
RECORDS = pa.schema([(k, _TYPES[k]) for k in records.FIELDS])
CROPS = pa.schema([*RECORDS, ("crop", pa.binary())])


class Crops:
  """Reads, detects and crops the photos of chunks of items, through the loop ``predict`` runs
  (``records.photo_rows``)."""

  def __init__(self, size: int, detect: bool = True, detector: str = "cnn"):
    compile_cache.enable()  # the other actors of this node load what one compiled
    self.size, self.detect, self.detector = size, detect, detector

  def __call__(self, batch: pa.Table) -> pa.Table:
    """The rows of a chunk of items (a row of ``batch``): their readable photos' faces found together, as
    ``predict`` finds a chunk's."""
    (items,) = batch.column("items").to_pylist()
    photos = [faces.Photo(it["file"], error=it["error"]) if it["error"] else _load(it) for it in items]
    rows = []
    for _, each in records.photo_rows(photos, self.find, chunk=max(len(photos), 1)):
      rows += [
        rec if crop is None else rec | {"crop": np.ascontiguousarray(crop, np.uint8).tobytes()} for rec, crop in each
      ]
    return pa.Table.from_pylist(rows, schema=CROPS)

  def find(self, photos: list[faces.Photo]) -> list[list[records.Row]]:
    return records.face_crops(photos, self.size, self.detect, self.detector)


def _load(item: dict) -> faces.Photo:
  photo = faces.load_photo(os.fsdecode(item["path"]))
  photo.file = item["file"]  # as the input named it, not the absolute path the worker read
  return photo


class Labels:
  """Holds the exported model (``Predictor.from_export``) and labels the faces of a batch of rows."""

  def __init__(self, model: str, batch_size: int = 32):
    compile_cache.enable()  # the other actors of this node load what one compiled
    self.predictor = Predictor.from_export(model, batch_size=batch_size, detect=False)
    self.shape = (self.predictor.size, self.predictor.size, 3)

  def __call__(self, batch: pa.Table) -> pa.Table:
    crops = batch.column("crop").to_pylist()
    rows = batch.drop_columns(["crop"]).to_pylist()
    ok = [i for i, r in enumerate(rows) if r["status"] == "ok"]
    if ok:
      pixels = np.stack([np.frombuffer(crops[i], np.uint8).reshape(self.shape) for i in ok])
      labelled = self.predictor.label([rows[i] for i in ok], self.predictor.run(pixels))
      for i, rec in zip(ok, labelled, strict=True):
        rows[i] = rec
    return pa.Table.from_pylist(rows, schema=RECORDS)
