"""A video's faces labelled: per-frame records with a track id, and one summary per track (per person).

Each frame's faces come from ``track.Tracker``; their crops are batched across
frames through the model. A track's summary combines its frames' raw outputs,
not their labels:
- age: the product of the frames' age distributions, each taken as a
  Gaussian of the predicted age and spread (distribution head): the
  precision-weighted mean, with a spread of 1/sqrt(sum of 1/spread^2). The
  frames are treated as independent, which they are not (neighbouring frames
  are nearly the same picture), so the combined spread is a lower bound. A
  regression head (no spread) gives the plain mean.
- the interval, where the model is calibrated: the calibration applied to the
  combined age and spread;
- gender: the mean P(female).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from jaxface import faces
from jaxface.faces import cnn
from jaxface.faces.detect import from_detection
from jaxface.inference import calibration as calibration_lib
from jaxface.inference import records
from jaxface.video import frames as frames_lib
from jaxface.video.track import Tracker

DEFAULT_EVERY = 5  # frames between full detections (benchmarks/video.py measures the choice)
# Frames held before their faces go through the model and their records out: a video with few faces never holds more
# (nor the annotated output more frames) than this, however long it is.
FLUSH_FRAMES = 32
MIN_SPREAD = 0.5  # years: a floor under a frame's spread, so that no one frame outweighs all the others


def combine(age: np.ndarray, p_female: np.ndarray, spread: np.ndarray | None, calibration: dict | None) -> dict:
  """One track's summary of its frames' outputs (see the module's docstring)."""
  age, p_female = np.asarray(age, np.float64), np.asarray(p_female, np.float64)
  out = {}
  if spread is not None:
    w = 1.0 / np.maximum(np.asarray(spread, np.float64), MIN_SPREAD) ** 2
    a, s = float((w * age).sum() / w.sum()), float(1.0 / np.sqrt(w.sum()))
    out["age_spread"] = round(s, 3)
  else:
    a, s = float(age.mean()), None
  out["age"] = round(a, 2)
  if calibration is not None:
    low, high = calibration_lib.interval(np.array([a]), calibration, None if s is None else np.array([s]))
    out |= {"age_low": round(float(low[0]), 2), "age_high": round(float(high[0]), 2)}
  p = float(p_female.mean())
  return out | {"gender": records.gender(p), "p_female": round(p, 4)}


@dataclasses.dataclass
class Frame(faces.Photo):
  """A video frame, as ``records.photo_rows`` walks photos."""

  index: int = 0
  t: float = 0.0


class VideoLabeller:
  """``predictor``'s model over a video's faces, followed by a ``Tracker``; ``run`` yields per-frame records, then
  ``tracks`` holds the per-track summaries."""

  def __init__(self, predictor, every: int = DEFAULT_EVERY, patience: int = 10, detector=None):
    self.predictor, self.every, self.patience = predictor, every, patience
    self.detector = detector or cnn.default()
    self.tracks: list[dict] = []
    self.stats: dict = {}

  def run(self, path: str | Path, annotate: str | Path | None = None) -> Iterator[dict]:
    fps, frames = frames_lib.read(path)
    tracker = Tracker(self.detector, self.every, self.patience)
    raw: dict[int, dict[str, list]] = {}
    seen: dict[int, tuple[int, int]] = {}
    writer, pending, t0, n_frames = None, [], time.perf_counter(), 0
    size = self.predictor.size

    def flush():
      nonlocal writer
      items = [(rec, crop) for _, _, _, recs in pending for rec, crop in recs]
      out = self.predictor.run(np.stack([c for _, c in items])) if items else {}
      labelled = iter(self.predictor.label([r for r, _ in items], out)) if items else iter(())
      k = 0
      for _, _, image, recs in pending:
        done = [next(labelled) for _ in recs]
        for rec in done:
          r = raw.setdefault(rec["track"], {"age": [], "p_female": [], "age_spread": []})
          for key in r:
            if key in out:
              r[key].append(float(out[key][k]))
          k += 1
        if annotate is not None:
          if writer is None:
            writer = frames_lib.Writer(annotate, fps, image.size)
          writer.write(faces.drawn(image, done))
        yield from done
      pending.clear()

    def find(group: list[Frame]) -> list[list[records.Row]]:
      (frame,) = group  # one frame at a time: the tracker follows them in order
      rows = []
      for track in tracker.step(frame.index, frame.image):
        face = from_detection(track.detection)
        first, _ = seen.get(track.id, (frame.index, frame.index))
        seen[track.id] = (first, frame.index)
        rec = {"file": frame.file, "frame": frame.index, "time_s": round(frame.t, 3), "track": track.id,
               "status": "ok", "box": list(face.box), "score": face.score}  # fmt: skip
        rows.append((rec, faces.crop(frame.image, face, size)))
      return [rows]

    walk = (Frame(str(path), image, index=index, t=t) for index, t, image in frames)
    for frame, rows in records.photo_rows(walk, find, chunk=1):
      n_frames += 1
      recs = [(r, crop) for r, crop in rows if crop is not None]
      for rec, _ in rows:
        if rec["status"] == "error":  # the detector failed on this frame: its row, and the video goes on
          yield {"file": rec["file"], "frame": frame.index, "time_s": round(frame.t, 3), **rec}
      pending.append((frame.index, frame.t, frame.image if annotate is not None else None, recs))  # kept only to draw
      if len(pending) >= FLUSH_FRAMES or sum(len(r) for *_, r in pending) >= self.predictor.batch_size:
        yield from flush()
    yield from flush()
    if writer is not None:
      writer.close()
    wall = time.perf_counter() - t0
    self.stats = {"frames": n_frames, "fps": round(fps, 3), "wall_s": round(wall, 2),
                  "frames_per_s": round(n_frames / wall, 2) if wall else None}  # fmt: skip
    self.tracks = []
    for tid in sorted(raw):
      r = raw[tid]
      spread = np.array(r["age_spread"]) if r["age_spread"] else None
      first, last = seen[tid]
      self.tracks.append(
        {"file": str(path), "track": tid, "first_frame": first, "last_frame": last, "frames_seen": len(r["age"]),
         **combine(np.array(r["age"]), np.array(r["p_female"]), spread, self.predictor.calibration)}
      )  # fmt: skip
