"""Bulk labelling on Ray Data against predict, on the same photos and the same cores, in one run.

  python benchmarks/bulk.py --workdir RUN --data UTKFace.tar.gz [--photos 200 600] [--name bulk_cpu]

The photos (made here, never committed) are benchmarks/detector.py's: 0-6
unseen UTKFace validation faces pasted at 48-260 px, turned, dimmed or
brightened, on plain colours or textures, 480-1024 px JPEGs. The workdir's
model is exported once (``.jaxface``); then, for each size, ``python -m
jaxface.predict FOLDER --model M`` and ``python -m jaxface.bulk FOLDER --model
M`` run as a user runs them, one after the other, each timed from start to
exit (bulk's includes starting Ray and its workers). A warm-up predict on a few
photos first fills the compilation cache, so neither pays for compiling.
Reported: photos/s of each, bulk/predict, the marginal photos/s between the
two sizes (start-up costs cancel), and whether the records are the same.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import detector
import numpy as np

from jaxface.inference import export
from jaxface.inference.records import FIELDS


def make_photos(folder: Path, faces: list[dict], n: int, seed: int) -> int:
  rng, texs, k, count = np.random.default_rng(seed), detector.textures(), 0, 0
  folder.mkdir(parents=True)
  for i in range(n):
    m = int(rng.integers(0, 7))
    if k + m > len(faces):
      k = 0
    img, truths = detector.make_photo(faces[k : k + m], rng, texs)
    k += m
    count += len(truths)
    img.save(folder / f"photo{i:04d}.jpg", quality=90)
  return count


def timed(cmd: list[str]) -> float:
  t = time.perf_counter()
  p = subprocess.run(cmd, capture_output=True, text=True)
  if p.returncode not in (0, 1):
    sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
  return time.perf_counter() - t


def records(predict_out: Path, bulk_out: Path) -> tuple[int, bool]:
  import pyarrow.parquet as pq

  key = lambda r: (r["file"], -1 if r["face"] is None else r["face"])  # noqa: E731
  p = sorted(({k: r.get(k) for k in FIELDS} for r in map(json.loads, predict_out.open())), key=key)
  b = sorted(pq.read_table(bulk_out).to_pylist(), key=key)
  return len(p), p == b


def main() -> None:
  a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  a.add_argument("--workdir", required=True)
  a.add_argument("--data", required=True, help="UTKFace.tar.gz (the faces pasted into the photos)")
  a.add_argument("--photos", type=int, nargs="+", default=[200, 600])
  a.add_argument("--seed", type=int, default=0)
  a.add_argument("--name", default="bulk_cpu")
  args = a.parse_args()
  t0 = time.perf_counter()
  faces = detector.validation_faces(args.data, 300, args.seed)
  py = sys.executable
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    model = export.export(args.workdir, tmp / "model.jaxface")
    make_photos(tmp / "warm", faces, 16, args.seed + 99)
    timed([py, "-m", "jaxface.predict", str(tmp / "warm"), "--model", str(model), "--out", str(tmp / "warm.jsonl")])
    for n in args.photos:
      folder = tmp / f"photos{n}"
      n_faces = make_photos(folder, faces, n, args.seed + n)
      p_out, b_out = tmp / f"predict{n}.jsonl", tmp / f"bulk{n}"
      predict_s = timed([py, "-m", "jaxface.predict", str(folder), "--model", str(model), "--out", str(p_out)])
      bulk_s = timed([py, "-m", "jaxface.bulk", str(folder), "--model", str(model), "--out", str(b_out)])
      n_records, same = records(p_out, b_out)
      rows.append({
        "photos": n, "faces_pasted": n_faces, "records": n_records, "records_equal": same,
        "predict_s": round(predict_s, 1), "bulk_s": round(bulk_s, 1),
        "predict_photos_per_s": round(n / predict_s, 2), "bulk_photos_per_s": round(n / bulk_s, 2),
        "bulk_over_predict": round(predict_s / bulk_s, 3),
      })  # fmt: skip
      print(json.dumps(rows[-1]), flush=True)
  if len(rows) >= 2:
    lo, hi = rows[0], rows[-1]
    extra = hi["photos"] - lo["photos"]
    marginal = {
      "photos": f"{lo['photos']}->{hi['photos']}",
      "predict_photos_per_s": round(extra / (hi["predict_s"] - lo["predict_s"]), 2),
      "bulk_photos_per_s": round(extra / (hi["bulk_s"] - lo["bulk_s"]), 2),
    }
    marginal["bulk_over_predict"] = round(marginal["bulk_photos_per_s"] / marginal["predict_photos_per_s"], 3)
    rows.append({"marginal": marginal})
  meta = common.provenance("bulk", t0, workdir=args.workdir, cores=len(__import__("os").sched_getaffinity(0)))
  common.write(args.name, rows, meta)


if __name__ == "__main__":
  main()
