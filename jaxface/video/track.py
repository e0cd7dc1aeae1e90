"""Following faces across a video's frames: the detector every ``every`` frames, a second look in between.

On a detection frame, each face found is matched to the track whose last box
overlaps it most (IoU of at least MIN_IOU, greedily, the best pairs first); a
face matched by no track starts a new one. On every other frame, and for a
track that no detection matched, the detector looks again at the region
around the track's last box (``cnn.Detector.look_again``: the face's box and
landmarks found again near the same place). A track not seen for
``patience`` frames ends. Tracks are numbered from 1 in the order they start.
"""

from __future__ import annotations

import dataclasses

MIN_IOU = 0.3


@dataclasses.dataclass
class Track:
  id: int
  detection: object  # cnn.Detection: box (x0, y0, x1, y1), keypoints, score
  last_seen: int
  first_seen: int


def iou(a, b) -> float:
  w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = w * h
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return inter / union if union > 0 else 0.0


class Tracker:
  def __init__(self, detector, every: int = 5, patience: int = 10):
    if every < 1:
      raise ValueError(f"the detector runs every {every} frames: give 1 or more")
    self.detector, self.every, self.patience = detector, every, patience
    self.tracks: list[Track] = []
    self._next = 1

  def step(self, index: int, image) -> list[Track]:
    """The tracks seen on frame ``index`` (its image), with their detections there."""
    self.tracks = [t for t in self.tracks if index - t.last_seen <= self.patience]
    matched: dict[int, object] = {}
    new = []
    if index % self.every == 0:
      found = self.detector.detect_many([image])[0]
      pairs = sorted(
        ((iou(t.detection.box, d.box), ti, di) for ti, t in enumerate(self.tracks) for di, d in enumerate(found)),
        reverse=True,
      )
      used_t, used_d = set(), set()
      for overlap, ti, di in pairs:
        if overlap < MIN_IOU:
          break
        if ti not in used_t and di not in used_d:
          used_t.add(ti)
          used_d.add(di)
          matched[ti] = found[di]
      new = [d for di, d in enumerate(found) if di not in used_d]
    rest = [ti for ti in range(len(self.tracks)) if ti not in matched]
    if rest:
      again = self.detector.look_again([image], [[self.tracks[ti].detection for ti in rest]])[0]
      taken = [d.box for d in matched.values()]
      for ti, d in zip(rest, again, strict=True):
        if d is not None and all(iou(d.box, b) < MIN_IOU for b in taken):  # two tracks on one face: the first keeps it
          matched[ti] = d
          taken.append(d.box)
    for ti, d in matched.items():
      self.tracks[ti].detection, self.tracks[ti].last_seen = d, index
    for d in new:
      if all(iou(d.box, self.tracks[ti].detection.box) < MIN_IOU for ti in matched):
        self.tracks.append(Track(self._next, d, index, index))
        matched[len(self.tracks) - 1] = d
        self._next += 1
    return [self.tracks[ti] for ti in sorted(matched)]
