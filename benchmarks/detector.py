"""Face detectors on synthetic photos of unseen faces: recall, false positives, speed, and end-to-end age/gender.

  python benchmarks/detector.py --workdir DIR [--photos 80] [--name detector_cpu]
  python benchmarks/detector.py --geometry [--images 400]      (where the CNN puts UTKFace's own faces)

The photos are built from the subset5000 validation faces (never trained on),
listed by the committed experiments/results/cpu_subset5000/custom/predictions_validation.csv
and read from $JAXFACE_DATA: 1-4 faces a photo, pasted at 48-260 px, turned
by up to +-25 degrees, brightness scaled 0.45-1.25, on a plain colour or a
real texture (scikit-image's brick, grass, gravel), photos 480-1024 px. The
truth is where each face's 200x200 crop went. A detection is a hit when its
centre is within a quarter of the crop's side of the face's centre and its
width is 0.35-1.6 of that side (one detection a face, nearest first); any
other detection is a false positive. Also scikit-image's real photos
(astronaut: one face; camera: one face; chelsea (a cat) and coffee: none).

For each detector: recall, false positives per photo, photos and faces per
second at batch 1 (one photo a call) and batched (cnn: all the photos' views
in the detector's batches, ``cnn.BATCH``), and, through ``Predictor`` (detection, crop, the model of
--workdir), the age MAE and gender accuracy of the found faces, against the
same faces' ``--no-detect`` predictions (their 200x200 crops, with the same
brightness).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import tarfile
import time

import common
import numpy as np
from PIL import Image, ImageEnhance

VALIDATION = common.ROOT / "experiments/results/cpu_subset5000/custom/predictions_validation.csv"
DETECTORS = ("cnn", "haar")


def validation_faces(data: str, n: int, seed: int) -> list[dict]:
  with open(VALIDATION) as f:
    rows = list(csv.DictReader(f))
  rng = np.random.default_rng(seed)
  chosen = {rows[i]["file_name"]: rows[i] for i in rng.permutation(len(rows))[:n]}
  out = []
  with tarfile.open(data) as tar:
    for m in tar:
      name = m.name.rsplit("/", 1)[-1]
      if m.isfile() and name in chosen:
        img = Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB")
        out.append({"file": name, "image": img, "age": int(chosen[name]["age"]), "gender": int(chosen[name]["gender"])})
  return sorted(out, key=lambda f: f["file"])


def textures() -> list[np.ndarray]:
  from skimage import data

  return [np.asarray(getattr(data, t)()) for t in ("brick", "grass", "gravel")]


def make_photo(faces: list[dict], rng: np.random.Generator, texs: list[np.ndarray]) -> tuple[Image.Image, list[dict]]:
  w = int(rng.integers(480, 1025))
  h = int(rng.integers(max(360, w * 2 // 3), min(1025, w * 4 // 3) + 1))
  if rng.random() < 0.5:
    canvas = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
  else:
    t = Image.fromarray(texs[int(rng.integers(len(texs)))]).convert("RGB").resize((w, h))
    canvas = ImageEnhance.Brightness(t).enhance(float(rng.uniform(0.6, 1.2)))
  truths, placed = [], []
  for face in faces:
    side = int(rng.integers(48, 261))
    side = min(side, w // 2, h // 2)
    angle = float(rng.uniform(-25, 25))
    bright = float(rng.uniform(0.45, 1.25))
    crop = ImageEnhance.Brightness(face["image"]).enhance(bright)
    tile = crop.resize((side, side), Image.Resampling.BILINEAR).convert("RGBA").rotate(angle, Image.BILINEAR, True)
    for _ in range(50):  # a place that overlaps no other face
      x, y = int(rng.integers(0, w - tile.width + 1)), int(rng.integers(0, h - tile.height + 1))
      if all(x + tile.width < a or a + aw < x or y + tile.height < b or b + ah < y for a, b, aw, ah in placed):
        break
    else:
      continue
    placed.append((x, y, tile.width, tile.height))
    canvas.paste(tile, (x, y), tile)
    # The face centre: UTKFace's faces sit at (0.49, 0.45) of the crop (benchmarks/detector.py --geometry), turned.
    a = math.radians(-angle)  # PIL turns counter-clockwise; image y points down
    ox, oy = (0.49 - 0.5) * side, (0.45 - 0.5) * side
    cx = x + tile.width / 2 + ox * math.cos(a) - oy * math.sin(a)
    cy = y + tile.height / 2 + ox * math.sin(a) + oy * math.cos(a)
    truths.append(
      {**{k: face[k] for k in ("file", "age", "gender")}, "centre": (cx, cy), "side": side, "crop": crop,
       "angle": round(angle, 1), "brightness": round(bright, 2)}
    )  # fmt: skip
  return canvas, truths


def match(boxes: list[tuple], truths: list[dict]) -> tuple[dict[int, int], int]:
  """{truth index: box index} of the hits, and the number of false positives. Boxes: (x, y, w, h)."""
  pairs = []
  for i, t in enumerate(truths):
    for j, (x, y, bw, bh) in enumerate(boxes):
      d = math.hypot(x + bw / 2 - t["centre"][0], y + bh / 2 - t["centre"][1])
      if d <= 0.25 * t["side"] and 0.35 * t["side"] <= bw <= 1.6 * t["side"]:
        pairs.append((d, i, j))
  hits, used = {}, set()
  for _, i, j in sorted(pairs):
    if i not in hits and j not in used:
      hits[i] = j
      used.add(j)
  return hits, len(boxes) - len(hits)


def geometry(data: str, n: int) -> dict:
  """Medians (10th, 90th percentiles) of where the CNN detector puts UTKFace's own faces, as fractions of 200 px."""
  from jaxface.faces import cnn

  images = []
  with tarfile.open(data) as tar:
    for m in tar:
      if m.isfile() and m.name.endswith(".jpg"):
        try:
          images.append(Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB"))
        except OSError:
          continue
      if len(images) >= n:
        break
  found = [r[0] for r in cnn.Detector(batch_size=32).detect_many(images) if r]
  b, k = np.array([f.box for f in found]), np.array([f.keypoints for f in found])
  side = images[0].size[0]
  eyes = (k[:, 0] + k[:, 1]) / 2

  def q(x):
    return [round(float(v), 3) for v in np.percentile(x, [50, 10, 90])]

  return {
    "images": len(images), "found": len(found),
    "box_width": q((b[:, 2] - b[:, 0]) / side), "box_centre_x": q((b[:, 0] + b[:, 2]) / 2 / side),
    "box_centre_y": q((b[:, 1] + b[:, 3]) / 2 / side),
    "eyes_x": q(eyes[:, 0] / side), "eyes_y": q(eyes[:, 1] / side),
    "eye_distance": q(np.linalg.norm(k[:, 1] - k[:, 0], axis=1) / side),
    "eye_to_mouth": q(np.linalg.norm(k[:, 3] - eyes, axis=1) / side),
    "eye_angle_deg": q(np.degrees(np.arctan2(k[:, 1, 1] - k[:, 0, 1], k[:, 1, 0] - k[:, 0, 0]))),
  }  # fmt: skip


def evaluate_detector(detector: str, photos: list, predictor_factory) -> dict:
  from jaxface import faces

  images = [p for p, _ in photos]
  t = time.perf_counter()
  found = [faces.detect(img, detector) for img in images]  # batch 1: one photo a call
  batch1 = time.perf_counter() - t
  batched = None
  if detector == "cnn":
    from jaxface.faces import cnn

    t = time.perf_counter()
    cnn.default().detect_many(images)
    batched = time.perf_counter() - t
  n_faces = sum(len(tr) for _, tr in photos)
  hits, fps, per_photo = 0, 0, []
  for (_, truths), fs in zip(photos, found, strict=True):
    h, fp = match([f.box for f in fs], truths)
    hits += len(h)
    fps += fp
    per_photo.append(h)
  # End to end: the predictor's records for each photo, matched to the truths by their boxes.
  pred = predictor_factory(detector)
  e2e, same = [], []
  for (img, truths), _ in zip(photos, per_photo, strict=True):
    recs = [r for r in pred.predict(img) if r["status"] == "ok"]
    h, _ = match([tuple(r["box"]) for r in recs], truths)
    for i, j in h.items():
      e2e.append((truths[i], recs[j]))
  plain = predictor_factory(None)
  for t_, rec in e2e:
    (crop_rec,) = plain.predict(t_["crop"])
    same.append((t_, rec, crop_rec))
  ae = [abs(r["age"] - t_["age"]) for t_, r, _ in same]
  ae_crop = [abs(c["age"] - t_["age"]) for t_, _, c in same]
  sex = lambda r: int(r["gender"] == "female")  # noqa: E731
  return {
    "detector": detector, "photos": len(photos), "faces": n_faces, "found": hits,
    "recall": round(hits / n_faces, 4), "false_positives": fps, "false_positives_per_photo": round(fps / len(photos), 4),
    "batch1_s": round(batch1, 2), "batch1_photos_per_s": round(len(photos) / batch1, 2),
    "batch1_faces_per_s": round(n_faces / batch1, 2),
    "batched_s": round(batched, 2) if batched else None,
    "batched_faces_per_s": round(n_faces / batched, 2) if batched else None,
    "end_to_end_faces": len(same),
    "end_to_end_age_mae": round(float(np.mean(ae)), 3) if ae else None,
    "no_detect_age_mae_same_faces": round(float(np.mean(ae_crop)), 3) if ae_crop else None,
    "end_to_end_gender_acc": round(float(np.mean([sex(r) == t_["gender"] for t_, r, _ in same])), 4) if same else None,
    "no_detect_gender_acc_same_faces": (
      round(float(np.mean([sex(c) == t_["gender"] for t_, _, c in same])), 4) if same else None
    ),
    "recall_by_size": _recall_by(photos, per_photo, "side", (48, 80, 120, 180, 261)),
    "recall_by_angle": _recall_by(photos, per_photo, "angle", (-25, -15, -5, 5, 15, 25.01), absolute=False),
    "recall_by_brightness": _recall_by(photos, per_photo, "brightness", (0.45, 0.7, 1.0, 1.26)),
  }  # fmt: skip


def _recall_by(photos, per_photo, key, edges, absolute=True) -> dict:
  vals, hit = [], []
  for (_, truths), h in zip(photos, per_photo, strict=True):
    for i, t in enumerate(truths):
      vals.append(t[key])
      hit.append(i in h)
  vals, hit = np.array(vals), np.array(hit)
  out = {}
  for lo, hi in zip(edges[:-1], edges[1:], strict=True):
    m = (vals >= lo) & (vals < hi)
    out[f"{lo}-{hi}"] = {"n": int(m.sum()), "recall": round(float(hit[m].mean()), 3) if m.any() else None}
  return out


def real_photos(predictor_factory) -> list[dict]:
  from skimage import data

  from jaxface import faces

  rows = []
  for name, expect in (("astronaut", 1), ("camera", 1), ("chelsea", 0), ("coffee", 0)):
    img = Image.fromarray(getattr(data, name)()).convert("RGB")
    for det in DETECTORS:
      fs = faces.detect(img, det)
      rows.append({"photo": name, "faces_in_it": expect, "detector": det, "found": len(fs),
                   "boxes": [list(f.box) for f in fs]})  # fmt: skip
  return rows


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", help="a trained workdir (the end-to-end age and gender)")
  p.add_argument("--data", default=None, help="UTKFace.tar.gz (default $JAXFACE_DATA)")
  p.add_argument("--photos", type=int, default=80)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--geometry", action="store_true", help="measure where the CNN puts UTKFace's faces, and stop")
  p.add_argument("--images", type=int, default=400, help="with --geometry")
  p.add_argument("--name", default="detector_cpu")
  a = p.parse_args()
  import os

  data = a.data or os.environ.get("JAXFACE_DATA")
  if not data:
    p.error("give --data or set JAXFACE_DATA")
  t0 = time.perf_counter()
  if a.geometry:
    g = geometry(data, a.images)
    print(json.dumps(g))
    common.write("detector_geometry", [g], common.provenance("detector_geometry", t0, images=a.images))
    return
  if not a.workdir:
    p.error("--workdir is needed (the end-to-end age and gender)")
  from jaxface import Predictor

  rng = np.random.default_rng(a.seed)
  pool = validation_faces(data, 4 * a.photos, a.seed)
  texs = textures()
  photos, k = [], 0
  for _ in range(a.photos):
    n = int(rng.integers(1, 5))
    photos.append(make_photo(pool[k : k + n], rng, texs))
    k += n
  cache = {}

  def predictor_factory(detector):
    if detector not in cache:
      kw = {"detect": False} if detector is None else {"detector": detector}
      cache[detector] = Predictor.from_workdir(a.workdir, batch_size=8, **kw)
    return cache[detector]

  from jaxface import faces
  from jaxface.faces import cnn

  for det in DETECTORS:  # compile / convert outside the timings
    faces.detect(photos[0][0], det)
  rows = [evaluate_detector(det, photos, predictor_factory) for det in DETECTORS]
  for r in rows:
    print(json.dumps({k: v for k, v in r.items() if not k.startswith("recall_by")}))
  real = real_photos(predictor_factory)
  for r in real:
    print(json.dumps(r))
  meta = common.provenance(
    "detector", t0, workdir=a.workdir, photos=a.photos, seed=a.seed, real_photos=real,
    detector_batch=cnn.default().batch_size,
    synthetic="subset5000 validation faces, 1-4 a photo, 48-260 px, +-25 deg, brightness 0.45-1.25, plain or textured",
  )  # fmt: skip
  common.write(a.name, rows, meta)


if __name__ == "__main__":
  main()
