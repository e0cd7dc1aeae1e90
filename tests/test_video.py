"""Faces in video: a synthetic clip made here (faces with known ids and ages, moving, entering and leaving, under
changing brightness), followed without an identity switch, labelled per frame and summarised per person."""

import json

import numpy as np
import pytest
from conftest import real_photos
from PIL import Image, ImageEnhance

pytest.importorskip("av")

from jaxface.video import frames as frames_lib  # noqa: E402
from jaxface.video import label, track  # noqa: E402

W, H, N = 320, 240, 40
SIDE = 90


def _paths():
  """Each face's top-left corner per frame, or None when it is out of the clip."""
  a = [(int(10 + 3 * i), 60) for i in range(N)]  # crosses from the left, all the clip
  b = [(200, int(20 + 2 * i)) if 10 <= i < 32 else None for i in range(N)]  # enters at 10, leaves at 32
  return [a, b]


def make_clip(path, faces):
  w = frames_lib.Writer(path, 10, (W, H))
  for i in range(N):
    canvas = Image.new("RGB", (W, H), (70, 80, 90))
    for face, where in zip(faces, _paths(), strict=True):
      if where[i] is not None:
        canvas.paste(face, where[i])
    w.write(ImageEnhance.Brightness(canvas).enhance(1.0 + 0.35 * np.sin(i / 4)))
  w.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
  photos = real_photos(40)
  if len(photos) >= 40:  # UTKFace faces: two people
    faces = [p.resize((SIDE, SIDE)) for p in (photos[5], photos[30])]
  else:  # skimage's photos (real_photos warned): the astronaut's face, and its mirror image
    face = photos[0].crop((150, 40, 310, 200)).resize((SIDE, SIDE))
    faces = [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
  path = tmp_path_factory.mktemp("video") / "clip.mp4"
  make_clip(path, faces)
  return path


def test_faces_are_followed_without_an_identity_switch(trained, clip, tmp_path, capsys):
  """``predict clip.mp4``: per-frame records, per-track summaries and the annotated clip, from one run."""
  from jaxface import predict

  rc = predict.main([str(clip), "--workdir", str(trained), "--out", str(tmp_path / "f.jsonl"), "--every", "5",
                     "--annotate", str(tmp_path / "ann"), "--batch-size", "8"])  # fmt: skip
  assert rc == 0 and f"{N} frames, 2 tracks" in capsys.readouterr().err
  recs = [json.loads(x) for x in (tmp_path / "f.jsonl").read_text().splitlines()]
  tracks = [json.loads(x) for x in (tmp_path / "f.jsonl.tracks.jsonl").read_text().splitlines()]
  paths = _paths()
  by_track = {}
  for r in recs:
    x, y, w, h = r["box"]
    c = np.array([x + w / 2, y + h / 2])
    truth = [np.linalg.norm(c - (np.array(p[r["frame"]]) + SIDE / 2)) if p[r["frame"]] else np.inf for p in paths]
    by_track.setdefault(r["track"], set()).add(int(np.argmin(truth)))
    assert min(truth) < SIDE / 2, f"frame {r['frame']}: a box on no face"
  assert all(len(v) == 1 for v in by_track.values()), f"a track on two faces (an identity switch): {by_track}"
  assert sorted(next(iter(v)) for v in by_track.values()) == [0, 1], "one track per face"
  seen = {t: {r["frame"] for r in recs if r["track"] == t} for t in by_track}
  face_b = next(t for t, v in by_track.items() if v == {1})
  assert min(seen[face_b]) >= 10 and max(seen[face_b]) < 32 + 10  # entered at 10, left at 32; patience 10
  summary = {t["track"]: t for t in tracks}
  assert set(summary) == set(by_track)
  for t in summary.values():
    mine = [r for r in recs if r["track"] == t["track"]]
    assert t["frames_seen"] == len(mine) and t["first_frame"] == min(r["frame"] for r in mine)
    assert t["age"] == pytest.approx(label.combine(
      np.array([r["age"] for r in mine]), np.array([r["p_female"] for r in mine]), None, None)["age"], abs=0.5)  # fmt: skip
  _, out = frames_lib.read(tmp_path / "ann" / "clip.mp4")
  assert sum(1 for _ in out) == N


def test_combining_frames_weights_each_by_its_spread():
  got = label.combine(np.array([20.0, 30.0]), np.array([0.2, 0.6]), np.array([1.0, 3.0]), None)
  assert got["age"] == pytest.approx((20 / 1 + 30 / 9) / (1 + 1 / 9), abs=0.01)
  assert got["age_spread"] == pytest.approx(1 / np.sqrt(1 + 1 / 9), abs=1e-3)
  assert got["p_female"] == pytest.approx(0.4) and got["gender"] == "male"
  cal = {"scaled_by": None, "half_width": 5.0}
  assert label.combine(np.array([30.0]), np.array([0.9]), None, cal) | {} == {
    "age": 30.0, "age_low": 25.0, "age_high": 35.0, "gender": "female", "p_female": 0.9}  # fmt: skip


def test_a_file_that_is_not_a_video_says_so(tmp_path):
  bad = tmp_path / "x.mp4"
  bad.write_bytes(b"nope")
  with pytest.raises(ValueError, match="x.mp4: not a readable video"):
    frames_lib.read(bad)
  w = frames_lib.Writer(tmp_path / "whole.mp4", 10, (64, 48))
  for i in range(20):
    w.write(Image.new("RGB", (64, 48), (10 * i, 0, 0)))
  w.close()
  data = (tmp_path / "whole.mp4").read_bytes()
  (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # an MP4's index is at its end
  with pytest.raises(ValueError, match="cut.mp4: not a readable video"):
    frames_lib.read(tmp_path / "cut.mp4")
  with pytest.raises(ValueError, match="every 0 frames"):
    track.Tracker(None, every=0)


def test_video_flags_that_cannot_apply_are_refused(trained, clip, capsys):
  from jaxface import predict

  assert predict.main([str(clip), "--workdir", str(trained), "--no-detect"]) == 2
  assert "drop --no-detect" in capsys.readouterr().err


@pytest.mark.parametrize("annotate", [False, True])
def test_a_long_stretch_without_faces_holds_no_more_than_a_flush_of_frames(trained, tmp_path, monkeypatch, annotate):
  """60 frames with no face: the labeller never holds more than label.FLUSH_FRAMES of them (and none it will not
  draw), where it used to hold every frame until 32 faces came."""
  import weakref

  from jaxface.inference.predictor import Predictor

  refs, most = [], 0

  def frames(path):
    def gen():
      nonlocal most
      for i in range(60):
        img = Image.new("RGB", (W, H), (70, 80, 90))
        refs.append(weakref.ref(img))  # freed by reference counting once nothing holds it
        most = max(most, sum(r() is not None for r in refs))
        yield i, i / 10, img

    return 10.0, gen()

  monkeypatch.setattr(label.frames_lib, "read", frames)
  labeller = label.VideoLabeller(Predictor.from_workdir(trained, batch_size=8))
  recs = list(labeller.run(tmp_path / "none.mp4", tmp_path / "ann.mp4" if annotate else None))
  assert recs == [] and labeller.stats["frames"] == 60
  assert most <= (label.FLUSH_FRAMES + 3 if annotate else 3), most


def test_a_frame_that_breaks_the_detector_is_its_own_error_row(trained, clip):
  """The video goes through records.photo_rows too: the frame whose detection fails is one error row, and the video
  goes on, its faces still followed."""
  from jaxface.faces import cnn
  from jaxface.inference.predictor import Predictor

  class Breaks:
    """The real detector, except that its third full detection (frame 10, with every=5) raises."""

    def __init__(self):
      self.real, self.calls = cnn.default(), 0

    def detect_many(self, images):
      self.calls += 1
      if self.calls == 3:
        raise RuntimeError("the detector broke")
      return self.real.detect_many(images)

    def look_again(self, *a):
      return self.real.look_again(*a)

  labeller = label.VideoLabeller(Predictor.from_workdir(trained, batch_size=8), every=5, detector=Breaks())
  recs = list(labeller.run(clip))
  (err,) = [r for r in recs if r["status"] == "error"]
  assert err == {"file": str(clip), "frame": 10, "time_s": 1.0, "status": "error",
                 "error": "detection failed (RuntimeError: the detector broke)"}  # fmt: skip
  assert {r["frame"] for r in recs if r["status"] == "ok"} >= set(range(11, N))  # followed after it
  assert labeller.stats["frames"] == N and len(labeller.tracks) >= 2
