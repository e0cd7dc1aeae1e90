"""Annotated copies of photos: a box per face, with "age, gender" (or "age (low-high), gender") above it."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from jaxface.faces.photos import IMAGE_SUFFIXES, Photo


def annotate(photo: Photo, records: list[dict], out_dir: Path, name: str | Path | None = None) -> Path:
  """Writes the annotated copy to ``out_dir / name`` (default: the photo's file name); returns its path."""
  img = drawn(photo.image, records)
  dest = out_dir / (name or Path(photo.file).name)
  if dest.suffix.lower() not in IMAGE_SUFFIXES:
    dest = dest.with_suffix(".png")
  dest.parent.mkdir(parents=True, exist_ok=True)
  img.save(dest)
  return dest


def drawn(image: Image.Image, records: list[dict]) -> Image.Image:
  """A copy of ``image`` with each face record's box and label."""
  img = image.copy()
  draw = ImageDraw.Draw(img)
  side = max(img.size)
  font = ImageFont.load_default(size=max(12, side // 40))
  width = max(2, side // 250)
  for r in records:
    x, y, w, h = r["box"]
    color = (230, 60, 120) if r["gender"] == "female" else (40, 120, 230)
    draw.rectangle((x, y, x + w, y + h), outline=color, width=width)
    label = f"{r['age']:.0f}, {r['gender']}"
    if "age_low" in r:  # the calibrated interval
      label = f"{r['age']:.0f} ({r['age_low']:.0f}-{r['age_high']:.0f}), {r['gender']}"
    tb = draw.textbbox((x, y), label, font=font)
    ty = y - (tb[3] - tb[1]) - 2 * width if y > (tb[3] - tb[1]) + 2 * width else y + h + width
    draw.rectangle((x, ty, x + tb[2] - tb[0] + 2 * width, ty + tb[3] - tb[1] + 2 * width), fill=color)
    draw.text((x + width, ty + width - (tb[1] - y)), label, fill="white", font=font)
  return img
