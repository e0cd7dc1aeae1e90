"""Image helpers for every reader of pictures (datasets, photos, video): upright RGB, and the dataset's square."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


def upright(img: Image.Image) -> Image.Image:
  """RGB, 8 bits per channel, turned as its EXIF orientation says (what every reader in jaxface works on)."""
  return to_rgb(ImageOps.exif_transpose(img))


def to_rgb(img: Image.Image) -> Image.Image:
  """RGB, 8 bits per channel. Pillow's own conversion clips 16- and 32-bit grey to 255 (an all-white
  image): those are scaled down to 8 bits first, from 16 bits (PNG's deepest grey)."""
  if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
    grey = np.asarray(img, np.float64) / 65535.0 * 255.0
    img = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), "L")
  return img.convert("RGB")


def to_square(img: Image.Image, size: int) -> Image.Image:
  """Centre-crops to a square and resizes to ``size`` (bilinear), as the dataset's images are stored."""
  w, h = img.size
  if w != h:
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    img = img.crop((left, top, left + s, top + s))
  if img.size != (size, size):
    img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
  return img
