"""Photos in: image files and folders, PIL images or arrays, read as RGB, or the reason they cannot be."""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from jaxface.faces import image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
# The decoders PIL may use; no other (EPS would run Ghostscript on an upload, and rarer decoders are attack surface).
FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
NOT_AN_IMAGE = "not a readable image (not JPEG, PNG, WebP or BMP)"


@dataclasses.dataclass
class Photo:
  file: str
  image: Image.Image | None = None
  error: str | None = None


def expand_inputs(paths: Iterable[str | Path]) -> tuple[list[Path], list[dict]]:
  """Image files named or found in folders (recursively), and records for inputs that yield none."""
  files, problems = [], []
  for p in map(Path, paths):
    if p.is_dir():
      found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
      if not found:
        problems.append(
          {"file": str(p), "status": "error", "error": f"folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})"}
        )
      files += found
    elif p.is_file():
      files.append(p)
    else:
      problems.append({"file": str(p), "status": "error", "error": "no such file or folder"})
  return files, problems


def reduced(img: Image.Image, max_side: int) -> tuple[Image.Image, float]:
  """An opened image decoded as RGB, EXIF-oriented, its longer side at most ``max_side``, and the factor from its
  pixels to the original's. A JPEG is decoded at the reduced scale (``draft``: 1/2 to 1/8 of it, never under
  ``max_side``), so a large one never exists in memory at full size; other formats are decoded, then reduced."""
  w, h = img.size
  if max(w, h) > max_side and img.format == "JPEG":
    k = max(w, h) / max_side
    img.draft("RGB", (math.ceil(w / k), math.ceil(h / k)))
  img.load()
  if (f := max(img.size) // max_side) >= 2:
    img = img.reduce(f)  # a box filter of f x f, in place of a resize from the full size
  if max(img.size) > max_side:
    img = img.resize(_fit(img.size, max_side), Image.Resampling.BILINEAR)
  out = image.upright(img)
  return out, max(w, h) / max(img.size)


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
  k = max_side / max(size)
  return max(round(size[0] * k), 1), max(round(size[1] * k), 1)


def load_photo(item: str | Path | Image.Image | np.ndarray, name: str | None = None) -> Photo:
  """An RGB PIL image, EXIF-oriented, or the reason it could not be read."""
  if isinstance(item, Image.Image):
    return Photo(name or "<image>", image.upright(item))
  if isinstance(item, np.ndarray):
    arr = item if item.ndim == 3 else np.repeat(item[..., None], 3, axis=-1)
    return Photo(name or "<array>", Image.fromarray(arr.astype(np.uint8)[..., :3]))
  path = Path(item)
  try:
    data = path.read_bytes()
    if not data:
      return Photo(str(path), error="empty file (0 bytes)")
    with Image.open(io.BytesIO(data), formats=FORMATS) as img:
      return Photo(str(path), image.upright(img))
  except Image.DecompressionBombError as e:
    return Photo(str(path), error=f"too large to read safely ({e})")
  except UnidentifiedImageError:
    return Photo(str(path), error=NOT_AN_IMAGE)
  except (OSError, ValueError) as e:
    return Photo(str(path), error=f"not a readable image ({type(e).__name__}: {e})")
