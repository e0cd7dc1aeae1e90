"""python -m jaxface.predict on a folder of photos: this tree against an earlier commit, in one run.

  python benchmarks/predict_speed.py --workdir RUN --data UTKFace.tar.gz --baseline REV [--photos 200] [--runs 2]

The photos (made here, never committed) are benchmarks/bulk.py's: 0-6 unseen
UTKFace validation faces pasted at 48-260 px on plain colours or textures,
480-1024 px JPEGs. The workdir's model is exported once (``.jaxface``). The
baseline commit is checked out into a temporary git worktree, and both trees'
``python -m jaxface.predict FOLDER --model M`` run as a user runs them (same
Python, same photos, same model), each timed from start to exit. One untimed
run of each first fills the compilation cache; then the timed runs alternate
(baseline, this tree, ...). Reported: each run's seconds and photos/s, the
speed-up of the medians, and how the records compare (faces per photo, boxes,
ages, genders).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bulk
import common
import detector

from jaxface.inference import export


def run(tree: Path, folder: Path, model: Path, out: Path) -> float:
  env = {**os.environ, "PYTHONPATH": str(tree)}
  cmd = [sys.executable, "-m", "jaxface.predict", str(folder), "--model", str(model), "--out", str(out)]
  t = time.perf_counter()
  p = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
  if p.returncode not in (0, 1):
    sys.exit(f"{' '.join(cmd)} in {tree} failed ({p.returncode}):\n{p.stderr[-3000:]}")
  return time.perf_counter() - t


def compare(base: Path, new: Path) -> dict:
  """How this tree's records differ from the baseline's: per photo, the faces found, and each face matched by
  order (best score first)."""

  def by_file(path):
    out = {}
    for r in map(json.loads, path.open()):
      out.setdefault(r["file"], []).append(r)
    return out

  a, b = by_file(base), by_file(new)
  same_faces = sum(len(a[f]) == len(b.get(f, [])) for f in a)
  box, age, gender, n = 0.0, 0.0, 0, 0
  for f in a:
    for ra, rb in zip(a[f], b.get(f, []), strict=False):
      if ra["status"] == rb["status"] == "ok":
        n += 1
        box = max(box, max(abs(x - y) for x, y in zip(ra["box"], rb["box"], strict=True)))
        age = max(age, abs(ra["age"] - rb["age"]))
        gender += ra["gender"] == rb["gender"]
  return {
    "photos": len(a), "photos_with_the_same_number_of_records": same_faces,
    "records": sum(map(len, a.values())), "records_new": sum(map(len, b.values())),
    "faces_compared": n, "max_box_difference_px": box, "max_age_difference": round(age, 3),
    "same_gender": gender,
  }  # fmt: skip


def main() -> None:
  a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  a.add_argument("--workdir", required=True)
  a.add_argument("--data", required=True, help="UTKFace.tar.gz (the faces pasted into the photos)")
  a.add_argument("--baseline", required=True, help="the commit to compare with")
  a.add_argument("--photos", type=int, default=200)
  a.add_argument("--runs", type=int, default=2)
  a.add_argument("--seed", type=int, default=0)
  a.add_argument("--name", default="predict_speed_cpu")
  args = a.parse_args()
  t0 = time.perf_counter()
  rev = subprocess.run(["git", "rev-parse", args.baseline], cwd=common.ROOT, capture_output=True, text=True, check=True)
  base_commit = rev.stdout.strip()
  faces = detector.validation_faces(args.data, 300, args.seed)
  with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    base = tmp / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(base), base_commit], cwd=common.ROOT, check=True)
    try:
      model = export.export(args.workdir, tmp / "model.jaxface")
      folder = tmp / "photos"
      n_faces = bulk.make_photos(folder, faces, args.photos, args.seed + args.photos)
      trees = {"baseline": base, "this": common.ROOT}
      for name, tree in trees.items():  # fills the compilation cache
        run(tree, folder, model, tmp / f"{name}.jsonl")
      times = {name: [] for name in trees}
      for _ in range(args.runs):
        for name, tree in trees.items():
          times[name].append(round(run(tree, folder, model, tmp / f"{name}.jsonl"), 2))
          print(name, times[name][-1], flush=True)
      records = compare(tmp / "baseline.jsonl", tmp / "this.jsonl")
    finally:
      subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=common.ROOT, check=True)
  rows = [
    {"tree": name, "commit": base_commit if name == "baseline" else common.git_commit(), "photos": args.photos,
     "seconds": ts, "photos_per_s": round(args.photos / statistics.median(ts), 2)}
    for name, ts in times.items()
  ]  # fmt: skip
  speedup = round(statistics.median(times["baseline"]) / statistics.median(times["this"]), 3)
  print(json.dumps(rows), speedup, json.dumps(records))
  meta = common.provenance(
    "predict_speed", t0, workdir=args.workdir, faces_pasted=n_faces, cores=len(os.sched_getaffinity(0)),
    speedup=speedup, records=records,
  )  # fmt: skip
  common.write(args.name, rows, meta)


if __name__ == "__main__":
  main()
