"""Cropping a detected face the way UTKFace's aligned crops look.

UTKFace's crops are aligned: eyes level, the face filling most of the 200x200
square. Both geometries below were measured by running each detector on
UTKFace's own images.

- With landmarks (the CNN detector; 399 of 400 UTKFace images, run by
  ``benchmarks/detector.py --geometry``, results/detector_geometry.json): medians,
  as fractions of the crop's side: the eyes' midpoint at (0.493, 0.298), the
  eyes 0.404 apart, the mouth 0.415 from the eyes' midpoint, the box 0.977
  wide; the line through the eyes at 1.7 degrees (the landmarks' own bias: UTKFace
  is aligned). A face is turned until its eyes' line is at that angle, the
  crop's side is the median of the three estimates (box, eye distance,
  eye-to-mouth), each divided by its UTKFace fraction, and the eyes' midpoint
  is put where UTKFace has it.
- Without (Haar, 300 images): the detected box is 0.825 of the crop's side,
  centred horizontally, its centre 0.43 of the side from the top.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from jaxface.faces.face import Face

BOX_TO_CROP = 1 / 0.825  # Haar
CENTRE_DROP = 0.5 - 0.43  # Haar
EYES_AT = (0.493, 0.298)  # CNN landmarks, fractions of the side
EYE_DISTANCE, EYE_TO_MOUTH, BOX_WIDTH = 0.404, 0.415, 0.977
EYE_ANGLE = math.radians(1.7)


def crop(image: Image.Image, face: Face | tuple[int, int, int, int], size: int) -> np.ndarray:
  """The UTKFace-style square crop of a face, resized to ``size`` (black beyond the photo's edge).

  ``face``: a Face (aligned upright when it has landmarks) or an (x, y, width, height) box.
  """
  if isinstance(face, Face) and face.keypoints is not None:
    return aligned(image, face.box, face.keypoints, size)
  x, y, w, h = face.box if isinstance(face, Face) else face
  side = max(w, h) * BOX_TO_CROP
  cx, cy = x + w / 2, y + h / 2 + CENTRE_DROP * side
  left, top = round(cx - side / 2), round(cy - side / 2)
  square = image.crop((left, top, left + round(side), top + round(side)))
  return _resize(square, size)


def aligned(image: Image.Image, box: tuple[int, int, int, int], keypoints: np.ndarray, size: int) -> np.ndarray:
  """Turned so that the eyes are level, scaled and placed as in UTKFace's crops."""
  kp = np.asarray(keypoints, np.float64)
  eye_a, eye_b, mouth = kp[0], kp[1], kp[3]
  eyes = (eye_a + eye_b) / 2
  dx, dy = eye_b - eye_a
  angle = math.atan2(dy, dx) - EYE_ANGLE
  side = float(
    np.median([box[2] / BOX_WIDTH, math.hypot(dx, dy) / EYE_DISTANCE, np.linalg.norm(mouth - eyes) / EYE_TO_MOUTH])
  )
  side_px = max(round(side), 1)
  # Output pixel (u, v) of the upright side_px square -> photo pixel: rotate by the eyes' angle about their midpoint.
  c, s = math.cos(angle), math.sin(angle)
  ou, ov = EYES_AT[0] * side_px, EYES_AT[1] * side_px
  # x = eyes_x + c (u - ou) - s (v - ov); y = eyes_y + s (u - ou) + c (v - ov)
  data = (c, -s, eyes[0] - c * ou + s * ov, s, c, eyes[1] - s * ou - c * ov)
  square = image.transform((side_px, side_px), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
  return _resize(square, size)


def _resize(square: Image.Image, size: int) -> np.ndarray:
  return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None), dtype=np.uint8)
