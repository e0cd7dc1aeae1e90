"""Finding the faces in a photo: ``detect(image, detector)``.

``cnn`` (the default): MediaPipe's BlazeFace full-range model ported to Flax
(``faces.cnn``), with six landmarks per face, which ``faces.crop`` uses to turn
the face upright. ``haar``: OpenCV's Haar cascade (``faces.haar``), which
needs no download. Measured on synthetic photos of unseen faces (README,
Predicting on photos): the CNN finds far more small, tilted and dark faces.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from jaxface.faces.face import Face

DETECTORS = ("cnn", "haar")


def from_detection(d) -> Face:
  """A ``cnn.Detection`` (corners, floats) as a Face (x, y, width, height in whole pixels)."""
  x0, y0, x1, y1 = d.box
  box = (round(x0), round(y0), max(round(x1 - x0), 1), max(round(y1 - y0), 1))
  return Face(box, round(float(d.score), 4), np.asarray(d.keypoints, np.float32))


def ready(detector: str = "cnn") -> None:
  """Makes ``detector`` now (converting it first, downloading its source if need be), so that a failure (offline,
  say) is one error before any photo: ``cnn.DetectorError``, whose message says what to do."""
  if detector == "cnn":
    from jaxface.faces import cnn

    cnn.default()


def detect(image: Image.Image | np.ndarray, detector: str = "cnn") -> list[Face]:
  """The faces of an RGB photo, best first (cnn: by score; haar: largest first)."""
  return detect_many([image], detector)[0]


def detect_many(images: list[Image.Image | np.ndarray], detector: str = "cnn") -> list[list[Face]]:
  """The faces of each photo, as ``detect`` finds them. The CNN runs the views of all the photos in shared batches:
  fewer padded views than one photo at a time. A photo's result does not depend on the others but for float
  rounding in those batches."""
  if detector == "haar":
    from jaxface.faces import haar

    return [haar.detect(np.asarray(image)) for image in images]
  if detector != "cnn":
    raise ValueError(f"unknown detector {detector!r}; choose one of {DETECTORS}")
  from jaxface.faces import cnn

  pil = [img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img)) for img in images]
  return [[from_detection(d) for d in found] for found in cnn.default().detect_many(pil)] if pil else []
