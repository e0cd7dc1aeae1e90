"""``python -m jaxface.predict PATH [PATH ...] [--workdir DIR | --model FILE] [--out FILE] [--csv] [--annotate OUTDIR]``

Finds the faces in photos (files or folders, recursively; JPEG, PNG, WebP,
BMP; EXIF orientation honoured) with a CNN detector (BlazeFace; --detector
haar for OpenCV's cascade), turns each upright by its eyes and crops it as
UTKFace's aligned crops look, and predicts age and gender with a trained
workdir, an exported model, or the model jaxface ships (neither flag). One
JSON line per face (file, face, box, age, gender, p_female, score) to stdout
or --out; --csv for a table. Images without a face and unreadable files get a
line too, with their status; the exit code is 1 when any input failed.

Video files (.mp4, .mov, .mkv, .avi, .webm; the video extra) are read frame
by frame: the detector runs every --every frames and follows each face in
between; each face's record carries its frame, time and track id, and each
track (person) gets a summary (first and last frame, frames seen, age with its
interval, gender) in --tracks (default: OUT.tracks.jsonl, or stderr).
--annotate writes OUTDIR/<video>.mp4 with the faces drawn.

From Python: ``Predictor.from_workdir(DIR).predict(image)`` (or
``Predictor.from_export(FILE)``) takes a path, a PIL image or an RGB array.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import os
import sys
from pathlib import Path

from tqdm import tqdm

from jaxface import cli, faces
from jaxface.inference import CHECKPOINTS
from jaxface.inference.predictor import Predictor
from jaxface.inference.records import FIELDS
from jaxface.video import frames as frames_lib
from jaxface.xla import compile_cache


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.predict", description=__doc__.split("\n\n")[1])
  p.add_argument("paths", nargs="+", help="image files or folders")
  cli.add_model_flags(p, CHECKPOINTS, faces.DETECTORS)
  p.add_argument("--out", help="write records here instead of stdout")
  p.add_argument("--csv", action="store_true", help="a CSV table instead of JSON lines")
  p.add_argument("--annotate", metavar="OUTDIR", help="write copies with boxes and 'age, gender' drawn")
  p.add_argument("--no-detect", action="store_true", help="each image is already a cropped face")
  p.add_argument("--every", type=int, default=None, help="videos: frames between full detections (default 5)")
  p.add_argument("--tracks", metavar="FILE", help="videos: where the per-track summaries go (JSON lines)")
  args = p.parse_args(argv)
  cli.setup_logging(logging.WARNING)
  if args.every is not None and args.every < 1:
    return cli.error(f"--every {args.every}: the detector runs every N frames; give 1 or more")
  for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is written escaped, never a crash
    stream.reconfigure(errors="backslashreplace")
  compile_cache.enable()
  try:
    predictor = Predictor.from_args(args, detect=not args.no_detect)
    if not args.no_detect:
      faces.ready(args.detector)
  except (FileNotFoundError, ValueError, faces.DetectorError) as e:
    return cli.error(e)
  if note := predictor.info.get("note"):  # the model's terms of use, say
    print(f"model: {note}", file=sys.stderr)
  videos = [p for p in args.paths if Path(p).is_file() and frames_lib.is_video(p)]
  if videos:
    return _videos(predictor, videos, args)
  files, problems = faces.expand_inputs(args.paths)
  copies = annotated_paths(files, args.annotate, None) if args.annotate else {}
  if (clash := _overwrites(copies)) is not None:
    return cli.error(clash)
  out = _open_out(args.out)
  writer = csv.DictWriter(out, FIELDS, extrasaction="ignore") if args.csv else None
  if writer:
    writer.writeheader()
  counts = {"ok": 0, "no_face": 0, "error": 0}
  bar = tqdm(files, desc="images", disable=None if len(files) > 20 else True, file=sys.stderr)
  # Records stream out as they come; annotated copies re-read their photo at the end, so a
  # long run never holds every decoded photo in memory.
  by_file: dict[str, list[dict]] = {}
  for rec in itertools.chain(problems, predictor.predict_many(faces.load_photo(f) for f in bar)):
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
    faces.annotate(faces.load_photo(file), recs, copies[file].parent, copies[file].name)
  if args.out:
    out.close()
  print(
    f"{len(files)} images: {counts['ok']} faces, {counts['no_face']} without a face, {counts['error']} failed",
    file=sys.stderr,
  )
  return cli.SOME_FAILED if counts["error"] else cli.OK


def annotated_paths(files: list[Path], outdir: str, suffix: str | None) -> dict[str, Path]:
  """Where each input's annotated copy goes: its path below the inputs' common folder, under ``outdir`` (so
  x/face.jpg and y/face.jpg stay apart), with ``suffix`` (default: the input's own when it is an image's)."""
  if not files:
    return {}
  base = Path(os.path.commonpath([Path(f).resolve().parent for f in files]))
  out = {}
  for f in files:
    dest = Path(outdir).resolve() / Path(f).resolve().relative_to(base)
    if suffix or dest.suffix.lower() not in faces.IMAGE_SUFFIXES:
      dest = dest.with_suffix(suffix or ".png")
    out[str(f)] = dest
  return out


def _overwrites(copies: dict[str, Path]) -> str | None:
  """Why writing ``copies`` would destroy an input (None: it would not)."""
  inputs = {Path(f).resolve() for f in copies}
  for f, dest in copies.items():
    if dest in inputs:
      return (
        f"--annotate would overwrite the input {dest} with {f}'s annotated copy; give a folder apart from the inputs"
      )
  return None


def _open_out(path: str | None):
  """The records' file (stdout when None); a name that is not UTF-8 is written escaped."""
  if path is None:
    return sys.stdout
  try:
    return open(path, "w", newline="", errors="backslashreplace")
  except OSError as e:
    raise cli.UsageError(f"cannot write {path}: {e.strerror}") from None


VIDEO_FIELDS = ("file", "frame", "time_s", "track", *FIELDS[1:])


def _videos(predictor: Predictor, videos: list[str], args) -> int:
  """Every video's faces: per-frame records to --out, per-track summaries to --tracks."""
  from jaxface.video import label

  if len(videos) != len(args.paths):
    return cli.error("give videos or images, not both in one call")
  if args.no_detect or args.detector != "cnn":
    return cli.error("videos follow faces with the cnn detector: drop --no-detect and --detector haar")
  labeller = label.VideoLabeller(predictor, every=args.every or label.DEFAULT_EVERY)
  copies = annotated_paths([Path(v) for v in videos], args.annotate, ".mp4") if args.annotate else {}
  if (clash := _overwrites(copies)) is not None:
    return cli.error(clash)
  out = _open_out(args.out)
  tracks_path = args.tracks or (f"{args.out}.tracks.jsonl" if args.out else None)
  tracks = _open_out(tracks_path) if tracks_path else sys.stderr
  writer = csv.DictWriter(out, VIDEO_FIELDS, extrasaction="ignore") if args.csv else None
  if writer:
    writer.writeheader()
  failed = 0
  for video in videos:
    try:
      for rec in labeller.run(video, copies.get(str(Path(video)))):
        if writer:
          writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in rec.items()})
        else:
          out.write(json.dumps(rec) + "\n")
    except ValueError as e:  # not a readable video
      print(f"error: {e}", file=sys.stderr)
      failed += 1
      continue
    for t in labeller.tracks:
      tracks.write(json.dumps(t) + "\n")
    st = labeller.stats
    print(
      f"{video}: {st['frames']} frames, {len(labeller.tracks)} tracks, {st['frames_per_s']} frames/s", file=sys.stderr
    )
  for f in (out, tracks):
    if f not in (sys.stdout, sys.stderr):
      f.close()
  return cli.SOME_FAILED if failed else cli.OK


if __name__ == "__main__":
  cli.run(main)
