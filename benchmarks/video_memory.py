"""``predict`` on hour-long videos runs in flat memory: its peak RSS against the same command on a 10-second clip.

  python benchmarks/video_memory.py [--model FILE] [--fps 5] [--minutes 60]

The videos (made here, never committed): 320x240 at --fps frames a second, a grey background with a slow moving
gradient; one of 10 seconds with a face (scikit-image's astronaut, 120 px) in its first 2 seconds, one of
--minutes with no face, and one of --minutes with the face for 2 seconds of every minute. Each runs through ``python -m jaxface.predict
VIDEO --out records.jsonl`` (the shipped model by default), its resident memory sampled every 20 ms. Target: each
long video's peak within 300 MB of the 10-second clip's, with a record for every face frame written as it goes.
Writes benchmarks/results/video_memory_cpu.json (command, commit, host, date, wall time).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import common
import numpy as np
from abuse import RSS
from PIL import Image

W, H, FACE = 320, 240, 120
MB = 2**20


def make(path: Path, seconds: float, fps: int, face_every_s: float | None) -> int:
  """Writes the video; returns the frames holding a face."""
  import av
  from skimage import data

  face = np.asarray(Image.fromarray(data.astronaut()).crop((140, 20, 340, 220)).resize((FACE, FACE)))
  container = av.open(str(path), "w")
  stream = container.add_stream("mpeg4", rate=Fraction(fps))
  stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
  ramp = np.linspace(60, 180, W, dtype=np.float32)
  with_face = 0
  for i in range(int(seconds * fps)):
    t = i / fps
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = ((ramp + 40 * np.sin(t / 7)) % 255).astype(np.uint8)[None, :, None]
    if face_every_s and t % face_every_s < 2.0:
      frame[60 : 60 + FACE, 100 : 100 + FACE] = face
      with_face += 1
    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
      container.mux(packet)
  for packet in stream.encode():
    container.mux(packet)
  container.close()
  return with_face


def run(video: Path, model: list[str], out: Path) -> dict:
  t = time.perf_counter()
  cmd = [sys.executable, "-m", "jaxface.predict", str(video), *model, "--out", str(out)]
  proc = subprocess.Popen(cmd, cwd=common.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  with RSS(proc.pid) as rss:
    _, err = proc.communicate(timeout=3600)
  records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
  return {
    "video": video.name, "rc": proc.returncode, "seconds": round(time.perf_counter() - t, 1),
    "rss_peak_mb": round(rss.peak / MB, 1), "records": len(records),
    "frames_with_a_record": len({r["frame"] for r in records if r.get("status") == "ok"}),
    "stderr_tail": err.strip().splitlines()[-1] if err.strip() else "",
  }  # fmt: skip


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--model", help="a .jaxface file (default: the shipped model)")
  p.add_argument("--fps", type=int, default=5)
  p.add_argument("--minutes", type=float, default=60)
  p.add_argument("--name", default="video_memory_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  model = ["--model", a.model] if a.model else []
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for name, seconds, every in (
      ("clip_10s", 10, 60.0),  # a face in its first 2 s: the model runs (and compiles) as in the long ones
      ("hour_no_face", 60 * a.minutes, None),
      ("hour_face_every_minute", 60 * a.minutes, 60.0),
    ):
      video = tmp / f"{name}.mp4"
      with_face = make(video, seconds, a.fps, every)
      row = {"name": name, "seconds_of_video": seconds, "fps": a.fps, "frames_with_a_face": with_face}
      row |= run(video, model, tmp / f"{name}.jsonl")
      rows.append(row)
      print(json.dumps(row), flush=True)
  clip = rows[0]["rss_peak_mb"]
  targets = {f"{r['name']}_within_300mb_of_clip": r["rss_peak_mb"] - clip < 300 for r in rows[1:]}
  targets["all_ran"] = all(r["rc"] == 0 for r in rows)
  print(json.dumps(targets))
  common.write(a.name, rows, common.provenance("video_memory", t0, model=a.model or "shipped", targets=targets))


if __name__ == "__main__":
  main()
