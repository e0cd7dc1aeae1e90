"""Photos in, one record per face out: detection, UTKFace-style crops, and the model, batched across photos."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import jax
import numpy as np
from PIL import Image

from jaxface import faces
from jaxface.data import source as source_lib
from jaxface.inference import restore
from jaxface.inference.model import InferenceModel

FIELDS = ("file", "status", "face", "box", "age", "gender", "p_female", "score", "error")


class Predictor:
  """A trained model with its face detector: images in, one record per face out."""

  def __init__(self, restored: restore.Restored, batch_size: int = 32, detect: bool = True):
    self.model = InferenceModel(restored)
    self.batch_size, self.detect, self.size = batch_size, detect, restored.cfg.image_size

  @classmethod
  def from_workdir(cls, workdir: str | Path, checkpoint: str = "best", **kw) -> Predictor:
    return cls(restore.load(workdir, checkpoint), **kw)

  def predict(self, image: str | Path | Image.Image | np.ndarray) -> list[dict]:
    """Records for the faces of one image (a no-face or error record when there are none)."""
    return list(self.predict_many([faces.load_photo(image)]))

  def predict_many(self, photos: Iterable[faces.Photo]) -> Iterator[dict]:
    """Records for many photos, faces batched across photos at a static batch size."""
    pending: list[tuple[dict, np.ndarray]] = []
    for photo in photos:
      if photo.error:
        yield {"file": photo.file, "status": "error", "error": photo.error}
        continue
      if self.detect:
        found = faces.detect(np.asarray(photo.image))
        crops = [(f.box, f.score, faces.crop(photo.image, f.box, self.size)) for f in found]
      else:
        crops = [((0, 0, *photo.image.size), None, np.asarray(source_lib.to_square(photo.image, self.size)))]
      if not crops:
        yield {"file": photo.file, "status": "no_face"}
      for i, (box, score, pixels) in enumerate(crops):
        pending.append(({"file": photo.file, "status": "ok", "face": i, "box": list(box), "score": score}, pixels))
      while len(pending) >= self.batch_size:
        yield from self._flush(pending[: self.batch_size])
        pending = pending[self.batch_size :]
    if pending:
      yield from self._flush(pending)

  def _flush(self, items: list[tuple[dict, np.ndarray]]) -> Iterator[dict]:
    images = np.stack([p for _, p in items])
    n = len(images)
    if n < self.batch_size:  # pad: one compiled shape for every batch
      images = np.concatenate([images, np.zeros((self.batch_size - n, *images.shape[1:]), np.uint8)])
    out = jax.device_get(self.model(images))
    for (rec, _), a, pf in zip(items, out["age"][:n], out["p_female"][:n], strict=True):
      yield {
        **rec,
        "age": round(float(a), 2),
        "gender": "female" if pf > 0.5 else "male",
        "p_female": round(float(pf), 4),
      }
