"""Cropping a detected face the way UTKFace's aligned crops look.

UTKFace crop geometry was measured by running the Haar detector (``faces.detect``)
on 300 UTKFace images (200x200): the detected box is 0.825 of the crop's side
(median), centred horizontally, its centre 0.43 of the side from the top. So a
face box grows by 1/0.825 and the crop centre sits 0.07 of its side below the
box centre.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

BOX_TO_CROP = 1 / 0.825
CENTRE_DROP = 0.5 - 0.43


def crop(image: Image.Image, box: tuple[int, int, int, int], size: int) -> np.ndarray:
  """The UTKFace-style square crop around a detected box, resized to ``size`` (black beyond the photo's edge)."""
  x, y, w, h = box
  side = max(w, h) * BOX_TO_CROP
  cx, cy = x + w / 2, y + h / 2 + CENTRE_DROP * side
  left, top = round(cx - side / 2), round(cy - side / 2)
  square = image.crop((left, top, left + round(side), top + round(side)))
  return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None), dtype=np.uint8)
