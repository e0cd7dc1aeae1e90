"""The fallback face detector: OpenCV's frontal-face Haar cascade.

It ships inside opencv-python-headless 4.x and runs offline (5.0 no longer
bundles the cascades): no download at all. It misses small, tilted and dark
faces, and gives no landmarks (``faces.detect`` explains the choice).
"""

from __future__ import annotations

import functools

import numpy as np

from jaxface.faces.face import Face


@functools.cache
def _cascade():
  try:
    import cv2
  except ImportError:
    raise ImportError(
      "face detection needs opencv-python-headless 4.x: pip install 'opencv-python-headless<5'"
    ) from None
  path = getattr(getattr(cv2, "data", None), "haarcascades", None)
  if not path:
    raise ImportError(
      f"OpenCV {cv2.__version__} ships no Haar cascades (5.0 dropped them): pip install 'opencv-python-headless<5'"
    )
  c = cv2.CascadeClassifier(path + "haarcascade_frontalface_default.xml")
  if c.empty():
    raise ImportError(f"could not load {path}haarcascade_frontalface_default.xml")
  return cv2, c


def detect(image: np.ndarray, min_size: int = 30) -> list[Face]:
  """Faces in an RGB uint8 image, largest first."""
  cv2, cascade = _cascade()
  gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)  # no equalisation: as calibrated
  boxes, _, weights = cascade.detectMultiScale3(
    gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size), outputRejectLevels=True
  )
  faces = [Face(tuple(int(v) for v in b), float(w)) for b, w in zip(boxes, np.ravel(weights), strict=True)]
  return sorted(faces, key=lambda f: -f.box[2] * f.box[3])
