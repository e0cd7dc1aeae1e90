"""A detected face: its box, its score and, from the CNN detector, six landmarks."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Face:
  box: tuple[int, int, int, int]  # x, y, width, height in the photo's pixels
  score: float  # Haar: the cascade's level weight; cnn: P(face)
  # cnn only: (6, 2) x, y in the photo's pixels: the eyes (image left, then right), nose tip, mouth, the ears
  keypoints: np.ndarray | None = dataclasses.field(default=None, compare=False)


class DetectorError(RuntimeError):
  """The detector cannot be made (its source cannot be downloaded or read); the message says what to do."""
