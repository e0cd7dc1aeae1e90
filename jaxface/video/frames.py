"""Reading and writing video files with PyAV (FFmpeg in one wheel: the ``video`` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


def _av():
  try:
    import av
  except ImportError:
    raise ValueError("reading video needs PyAV: pip install 'jaxface[video]'") from None
  return av


def is_video(path: str | Path) -> bool:
  return Path(path).suffix.lower() in SUFFIXES


def read(path: str | Path) -> tuple[float, Iterator[tuple[int, float, Image.Image]]]:
  """The video's frame rate, and its frames as (index, time in seconds, RGB image), decoded one at a time."""
  av = _av()
  try:
    container = av.open(str(path))
    stream = container.streams.video[0]
  except (av.error.FFmpegError, IndexError, OSError) as e:
    raise ValueError(f"{path}: not a readable video ({type(e).__name__}: {e})") from None
  fps = float(stream.average_rate or stream.guessed_rate or 25)

  def frames():
    i = 0
    with container:
      try:
        for i, frame in enumerate(container.decode(stream)):
          t = float(frame.time) if frame.time is not None else i / fps
          yield i, t, frame.to_image().convert("RGB")
      except av.error.FFmpegError as e:  # a damaged stream: named, with where it broke
        raise ValueError(f"{path}: the video cannot be decoded past frame {i} ({type(e).__name__}: {e})") from None

  return fps, frames()


class Writer:
  """An H.264 MP4 (MPEG-4 Part 2 where the FFmpeg build has no H.264 encoder), written frame by frame."""

  def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
    av = _av()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    self.container = av.open(str(path), "w")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    self.stream = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    self.stream.width, self.stream.height = size[0] - size[0] % 2, size[1] - size[1] % 2  # yuv420p: even sides
    self.stream.pix_fmt = "yuv420p"

  def write(self, image: Image.Image) -> None:
    av = _av()
    w, h = self.stream.width, self.stream.height
    frame = av.VideoFrame.from_ndarray(np.asarray(image.convert("RGB"))[:h, :w], format="rgb24")
    for packet in self.stream.encode(frame):
      self.container.mux(packet)

  def close(self) -> None:
    for packet in self.stream.encode():
      self.container.mux(packet)
    self.container.close()
