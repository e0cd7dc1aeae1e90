"""The model that ships inside the package: ``predict``, ``serve`` and ``bulk`` use it when no model is given.

``MODEL`` is a ``python -m jaxface.export`` file (float16 weights) that also
carries the face detector's pinned ``.tflite`` (``DETECTOR``), so a fresh
install labels photos with no training and no download. What it is, how it
was made and how well it does: ``docs/model-card.md``. It was trained on
UTKFace, whose licence allows non-commercial research only, from InsightFace's
MobileFaceNet weights, which are for non-commercial research only: so is this model.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

MODEL = Path(__file__).with_name("mobilefacenet_utkface.jaxface")
DETECTOR = "detector/face_detection_full_range.tflite"  # the zip entry holding the detector's original
DETECTOR_MAX_BYTES = 16 * 2**20


def model() -> Path:
  """The shipped model's path; FileNotFoundError saying what to give instead when this install has none."""
  if not MODEL.is_file():
    raise FileNotFoundError(
      f"this install of jaxface has no shipped model ({MODEL} is missing): give --model FILE or --workdir DIR"
    )
  return MODEL


def detector_tflite() -> bytes | None:
  """The detector's .tflite carried by the shipped model, or None (no shipped model, or it carries none)."""
  try:
    with zipfile.ZipFile(MODEL) as z:
      if z.getinfo(DETECTOR).file_size > DETECTOR_MAX_BYTES:
        return None
      return z.read(DETECTOR)
  except (OSError, KeyError, zipfile.BadZipFile):
    return None
