"""Faces in video: identity switches, per-track against per-frame age error, and frames/s, on a synthetic clip.

  python benchmarks/video.py --workdir RUN --data UTKFace.tar.gz [--every 1 2 5 10] [--frames 150]

The clip (made here, never committed): 480x320, 10 frames/s, four UTKFace
faces of the workdir's validation split (faces it did not train on, with
their known ages) at 80 px, moving; one crosses the whole clip, one enters and
leaves, two enter late; the brightness swings by +-35 %. For each
``--every`` (frames between full detections), ``video.label.VideoLabeller``
runs over it on this machine's cores:
- identity switches: tracks that followed more than one face (each record is
  given to the nearest true face), and faces split over several tracks;
- age MAE per frame (every record against its face's age) and per track (each
  track's combined age against its face's);
- frames/s, the whole labelling included (decode, detection, crops, model).
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import common
import numpy as np
from PIL import Image, ImageEnhance

from jaxface.data import prepare
from jaxface.data import source as source_lib
from jaxface.inference import restore
from jaxface.inference.predictor import Predictor
from jaxface.video import frames as frames_lib
from jaxface.video import label

W, H, SIDE, FPS = 480, 320, 80, 10


def paths(n: int) -> list[list]:
  """Each face's top-left corner per frame (None: out of the clip)."""
  span = W - SIDE - 20
  return [
    [(10 + int(span * i / n), 20) for i in range(n)],
    [(W - SIDE - 10 - int(span * i / n), 210) if n // 5 <= i < 4 * n // 5 else None for i in range(n)],
    [(200, 110 + int(20 * np.sin(i / 8))) if i >= n // 3 else None for i in range(n)],
    [(380, 110) if i >= n // 2 else None for i in range(n)],
  ]


def faces(workdir: Path, data: str) -> list[tuple[Image.Image, int]]:
  """Four validation faces of the workdir's dataset, of different ages, with their ages."""
  cfg = restore.load(workdir, "last").cfg
  b = prepare.prepare(data, cfg.dataset, cfg.image_size, cfg.tfds_dir)
  val = b.as_data_source("validation")
  want = {}
  for i in range(len(val)):
    ex = val[i]
    band = int(ex["age"]) // 20
    name = ex["file_name"].decode() if isinstance(ex["file_name"], bytes) else ex["file_name"]
    want.setdefault(band, (name, int(ex["age"])))
    if len(want) == 4:
      break
  names = dict(want.values())
  got = {n: d for n, d in source_lib.iter_files(source_lib.locate(data)) if n in names}
  return [(Image.open(io.BytesIO(got[n])).convert("RGB").resize((SIDE, SIDE)), names[n]) for n in names]


def clip(path: Path, people, n: int) -> list[list]:
  w = frames_lib.Writer(path, FPS, (W, H))
  where = paths(n)
  for i in range(n):
    canvas = Image.new("RGB", (W, H), (70, 80, 90))
    for (face, _), p in zip(people, where, strict=True):
      if p[i] is not None:
        canvas.paste(face, p[i])
    w.write(ImageEnhance.Brightness(canvas).enhance(1.0 + 0.35 * np.sin(i / 6)))
  w.close()
  return where


def score(recs: list[dict], tracks: list[dict], where: list[list], ages: list[int]) -> dict:
  faces_of, per_frame = {}, []
  for r in recs:
    x, y, w, h = r["box"]
    c = np.array([x + w / 2, y + h / 2])
    d = [np.linalg.norm(c - (np.array(p[r["frame"]]) + SIDE / 2)) if p[r["frame"]] else np.inf for p in where]
    k = int(np.argmin(d))
    faces_of.setdefault(r["track"], []).append(k)
    per_frame.append(abs(r["age"] - ages[k]))
  switches = sum(len(set(v)) - 1 for v in faces_of.values())
  tracks_of = {}
  for t, v in faces_of.items():
    tracks_of.setdefault(max(set(v), key=v.count), []).append(t)
  per_track = [abs(t["age"] - ages[max(set(faces_of[t["track"]]), key=faces_of[t["track"]].count)]) for t in tracks]
  return {
    "records": len(recs), "tracks": len(tracks), "identity_switches": switches,
    "faces_split": sum(len(v) - 1 for v in tracks_of.values()), "faces_missed": len(where) - len(tracks_of),
    "age_mae_per_frame": round(float(np.mean(per_frame)), 3), "age_mae_per_track": round(float(np.mean(per_track)), 3),
  }  # fmt: skip


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--data", required=True)
  p.add_argument("--every", type=int, nargs="+", default=[1, 2, 5, 10])
  p.add_argument("--frames", type=int, default=150)
  p.add_argument("--name", default="video_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  people = faces(Path(a.workdir), a.data)
  predictor = Predictor.from_workdir(a.workdir)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    where = clip(Path(tmp) / "clip.mp4", people, a.frames)
    list(label.VideoLabeller(predictor, every=5).run(Path(tmp) / "clip.mp4"))  # compiles every shape once
    for every in a.every:
      labeller = label.VideoLabeller(predictor, every=every)
      recs = list(labeller.run(Path(tmp) / "clip.mp4"))
      r = {"every": every, **labeller.stats, **score(recs, labeller.tracks, where, [age for _, age in people])}
      rows.append(r)
      print(r, flush=True)
  import jax

  cfg, last = predictor.model.restored.cfg, json.loads((Path(a.workdir) / "history.json").read_text())[-1]
  model = {"arch": cfg.arch, "preset": cfg.preset, "dataset": cfg.dataset, "epochs": cfg.epochs,
           "image_size": cfg.image_size, "val_age_mae": round(last["val_age_mae"], 3)}  # fmt: skip
  meta = common.provenance(
    "video", t0, platform=jax.default_backend(), workdir=a.workdir, model=model, faces=[age for _, age in people],
    clip={"width": W, "height": H, "face_px": SIDE, "fps": FPS, "frames": a.frames},
  )  # fmt: skip
  common.write(a.name, rows, meta)


if __name__ == "__main__":
  main()
