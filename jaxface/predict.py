"""python -m jaxface.predict PATH [PATH ...] --workdir DIR [--out FILE] [--csv] [--annotate OUTDIR] [--no-detect]

Finds the faces in photos (files or folders, recursively; JPEG, PNG, WebP,
BMP; EXIF orientation honoured), crops each as UTKFace's aligned crops look,
and predicts age and gender with a trained workdir. One JSON line per face
(file, face, box, age, gender, p_female, score) to stdout or --out; --csv for
a table. Images without a face and unreadable files get a line too, with
their status; the exit code is 1 when any input failed.

From Python: ``Predictor.from_workdir(DIR).predict(image)`` takes a path, a
PIL image or an RGB array.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import itertools
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from jaxface import evaluate, faces, restore
from jaxface.data import source as source_lib

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
FIELDS = ("file", "status", "face", "box", "age", "gender", "p_female", "score", "error")


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


def load_photo(item: str | Path | Image.Image | np.ndarray, name: str | None = None) -> Photo:
  """An RGB PIL image, EXIF-oriented, or the reason it could not be read."""
  if isinstance(item, Image.Image):
    return Photo(name or "<image>", ImageOps.exif_transpose(item).convert("RGB"))
  if isinstance(item, np.ndarray):
    arr = item if item.ndim == 3 else np.repeat(item[..., None], 3, axis=-1)
    return Photo(name or "<array>", Image.fromarray(arr.astype(np.uint8)[..., :3]))
  path = Path(item)
  try:
    data = path.read_bytes()
    if not data:
      return Photo(str(path), error="empty file (0 bytes)")
    with Image.open(io.BytesIO(data)) as img:
      return Photo(str(path), ImageOps.exif_transpose(img).convert("RGB"))
  except (UnidentifiedImageError, OSError, ValueError) as e:
    return Photo(str(path), error=f"not a readable image ({type(e).__name__}: {e})")


class Predictor:
  """A trained model with its face detector: images in, one record per face out."""

  def __init__(self, restored: restore.Restored, batch_size: int = 32, detect: bool = True):
    self.r, self.batch_size, self.detect = restored, batch_size, detect
    self.size = restored.cfg.image_size
    self._run = evaluate.make_predictor(restored.mdef, "none")

  @classmethod
  def from_workdir(cls, workdir: str | Path, checkpoint: str = "best", **kw) -> Predictor:
    return cls(restore.load(workdir, checkpoint), **kw)

  def predict(self, image: str | Path | Image.Image | np.ndarray) -> list[dict]:
    """Records for the faces of one image (a no-face or error record when there are none)."""
    return list(self.predict_many([load_photo(image)]))

  def predict_many(self, photos: Iterable[Photo]) -> Iterator[dict]:
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
    age, p = jax.device_get(self._run(self.r.params, self.r.rest, jnp.asarray(images)))
    for (rec, _), a, pf in zip(items, age[:n], p[:n], strict=True):
      yield {
        **rec,
        "age": round(float(a), 2),
        "gender": "female" if pf > 0.5 else "male",
        "p_female": round(float(pf), 4),
      }


def annotate(photo: Photo, records: list[dict], out_dir: Path) -> Path:
  img = photo.image.copy()
  draw = ImageDraw.Draw(img)
  side = max(img.size)
  font = ImageFont.load_default(size=max(12, side // 40))
  width = max(2, side // 250)
  for r in records:
    x, y, w, h = r["box"]
    color = (230, 60, 120) if r["gender"] == "female" else (40, 120, 230)
    draw.rectangle((x, y, x + w, y + h), outline=color, width=width)
    label = f"{r['age']:.0f}, {r['gender']}"
    tb = draw.textbbox((x, y), label, font=font)
    ty = y - (tb[3] - tb[1]) - 2 * width if y > (tb[3] - tb[1]) + 2 * width else y + h + width
    draw.rectangle((x, ty, x + tb[2] - tb[0] + 2 * width, ty + tb[3] - tb[1] + 2 * width), fill=color)
    draw.text((x + width, ty + width - (tb[1] - y)), label, fill="white", font=font)
  out_dir.mkdir(parents=True, exist_ok=True)
  dest = out_dir / Path(photo.file).name
  img.save(dest if dest.suffix.lower() in IMAGE_SUFFIXES else dest.with_suffix(".png"))
  return dest


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.predict", description=__doc__.split("\n\n")[1])
  p.add_argument("paths", nargs="+", help="image files or folders")
  p.add_argument("--workdir", required=True, help="a trained jaxface workdir")
  p.add_argument("--checkpoint", default="best", choices=["best", "last"])
  p.add_argument("--out", help="write records here instead of stdout")
  p.add_argument("--csv", action="store_true", help="a CSV table instead of JSON lines")
  p.add_argument("--annotate", metavar="OUTDIR", help="write copies with boxes and 'age, gender' drawn")
  p.add_argument("--no-detect", action="store_true", help="each image is already a cropped face")
  p.add_argument("--batch-size", type=int, default=32)
  args = p.parse_args(argv)
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
  try:
    predictor = Predictor.from_workdir(
      args.workdir, args.checkpoint, batch_size=args.batch_size, detect=not args.no_detect
    )
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  files, problems = expand_inputs(args.paths)
  out = open(args.out, "w", newline="") if args.out else sys.stdout
  writer = csv.DictWriter(out, FIELDS, extrasaction="ignore") if args.csv else None
  if writer:
    writer.writeheader()
  counts = {"ok": 0, "no_face": 0, "error": 0}
  bar = tqdm(files, desc="images", disable=None if len(files) > 20 else True, file=sys.stderr)
  # Records stream out as they come; annotated copies re-read their photo at the end, so a
  # long run never holds every decoded photo in memory.
  by_file: dict[str, list[dict]] = {}
  for rec in itertools.chain(problems, predictor.predict_many(load_photo(f) for f in bar)):
    counts[rec["status"]] += 1
    if writer:
      writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in rec.items()})
    else:
      out.write(json.dumps(rec) + "\n")
    if args.annotate and rec["status"] != "error":  # every readable photo gets a copy, faces or not
      faces_of = by_file.setdefault(rec["file"], [])
      if rec["status"] == "ok":
        faces_of.append(rec)
  for file, recs in by_file.items():
    annotate(load_photo(file), recs, Path(args.annotate))
  if args.out:
    out.close()
  print(
    f"{len(files)} images: {counts['ok']} faces, {counts['no_face']} without a face, {counts['error']} failed",
    file=sys.stderr,
  )
  return 1 if counts["error"] else 0


if __name__ == "__main__":
  sys.exit(main())
