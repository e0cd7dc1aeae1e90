"""Building your own collection at scale: images/s and peak memory of ``python -m jaxface.data`` on a manifest, and
training from it in stream mode against the step alone.

  python benchmarks/build_scale.py [--sizes 10000 30000 100000] [--detect 200] [--work /tmp/jaxface_scale]

1. A synthetic collection of small generated images (80x80 JPEGs of smooth
   random colour fields; never faces), with random ages, genders and persons,
   as one manifest per size (each a prefix of the largest).
2. build: ``python -m jaxface.data --data MANIFEST --dataset full --crop as-is
   --image-size 64`` in a child process, timed; peak RSS is the largest sum
   of the resident memory of it and its workers, read from /proc every 0.2 s.
3. detect: the same build with ``--crop detect`` on photos (320x240) each with
   one face pasted at a random place and size (skimage's astronaut).
4. stream: the custom arch's train step at the cpu preset's shape (64 px,
   batch 64) fed by the stream input from the largest collection's train
   split, timed over steps after a warm-up as the trainer runs them (one sync
   at the end), against the step alone (``train_throughput.bench``) in the
   same run.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import common
import numpy as np
from PIL import Image

from jaxface.data import parallel

GEN_SIDE, SIZE, BATCH = 80, 64, 64


def _make(job: tuple[str, int]) -> None:
  path, seed = job
  rng = np.random.default_rng(seed)
  low = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
  img = Image.fromarray(low).resize((GEN_SIDE, GEN_SIDE), Image.Resampling.BICUBIC)
  noise = rng.integers(-12, 13, (GEN_SIDE, GEN_SIDE, 3))
  Image.fromarray(np.clip(np.asarray(img, int) + noise, 0, 255).astype(np.uint8)).save(path, quality=85)


def collection(root: Path, n: int) -> list[list]:
  """``n`` generated images under root/img/ (made once), and their manifest rows."""
  rng = np.random.default_rng(0)
  rows = []
  jobs = []
  for i in range(n):
    rel = f"img/{i // 1000:03d}/{i:06d}.jpg"
    rows.append([rel, int(rng.integers(1, 90)), "mf"[int(rng.integers(0, 2))], f"p{i // 3}"])
    if not (root / rel).exists():
      (root / rel).parent.mkdir(parents=True, exist_ok=True)
      jobs.append((str(root / rel), i))
  for _ in parallel.ordered_map(_make, jobs, chunk=256):
    pass
  return rows


def write_manifest(path: Path, rows: list[list]) -> Path:
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["path", "age", "gender", "subject"])
    w.writerows(rows)
  return path


def _tree_rss(pid: int) -> int:
  """Resident bytes of ``pid`` and every process below it."""
  parents, rss = {}, {}
  for d in Path("/proc").iterdir():
    if not d.name.isdigit():
      continue
    try:
      stat = (d / "stat").read_text()
      parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
      rss[int(d.name)] = int((d / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
      continue
  tree, frontier = {pid}, [pid]
  while frontier:
    p = frontier.pop()
    kids = [c for c, pp in parents.items() if pp == p and c not in tree]
    tree.update(kids)
    frontier.extend(kids)
  return sum(rss.get(p, 0) for p in tree)


def build(manifest: Path, tfds_dir: Path, crop: str) -> dict:
  shutil.rmtree(tfds_dir, ignore_errors=True)  # a fresh build every time
  cmd = [
    sys.executable, "-m", "jaxface.data", "--data", str(manifest), "--dataset", "full", "--crop", crop,
    "--image-size", str(SIZE), "--tfds-dir", str(tfds_dir),
  ]  # fmt: skip
  t = time.perf_counter()
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  peak = 0
  while proc.poll() is None:
    peak = max(peak, _tree_rss(proc.pid))
    time.sleep(0.2)
  wall = time.perf_counter() - t
  out = proc.stdout.read()
  if proc.returncode:
    raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode})")
  import json

  summary = json.loads(out)
  built = sum(s["examples"] for s in summary["splits"].values())
  return {
    "rows_in_manifest": sum(1 for _ in open(manifest)) - 1, "built": built, "skipped": summary["skipped"]["count"],
    "wall_s": round(wall, 1), "images_per_s": round((built + summary["skipped"]["count"]) / wall, 1),
    "peak_rss_mb": round(peak / 2**20), "crop": crop, "dataset": summary["dataset"],
  }  # fmt: skip


def photos(root: Path, n: int) -> list[list]:
  from skimage import data

  face = Image.fromarray(data.astronaut()).crop((150, 40, 310, 200))
  rng = np.random.default_rng(1)
  rows = []
  for i in range(n):
    rel = f"photos/{i:04d}.jpg"
    if not (root / rel).exists():
      (root / rel).parent.mkdir(parents=True, exist_ok=True)
      side = int(rng.integers(60, 150))
      canvas = Image.new("RGB", (320, 240), tuple(int(v) for v in rng.integers(40, 200, 3)))
      canvas.paste(face.resize((side, side)), (int(rng.integers(0, 320 - side)), int(rng.integers(0, 240 - side))))
      canvas.save(root / rel, quality=90)
    rows.append([rel, int(rng.integers(1, 90)), "mf"[i % 2], f"q{i}"])
  return rows


def stream_vs_step(manifest: Path, tfds_dir: Path, steps_timed: int) -> list[dict]:
  import jax
  import train_throughput

  from jaxface import config as config_lib
  from jaxface import sharding
  from jaxface.data import pipeline, prepare
  from jaxface.training import feeds, model_def, optimizer, steps
  from jaxface.xla import options as xla_options

  # The step train_throughput.bench times: the custom arch at the cpu preset's shape, 64 px and batch 64.
  cfg = config_lib.make(
    "custom", image_size=SIZE, batch_size=BATCH, data=str(manifest), dataset="full", tfds_dir=str(tfds_dir),
    crop="as-is",
  )  # fmt: skip
  b = prepare.prepare(cfg.data, cfg.dataset, cfg.image_size, cfg.tfds_dir, crop=cfg.crop)
  src = b.as_data_source("train")
  mesh = sharding.data_mesh(jax.devices())
  mdef, params, batch_stats = model_def.init_model(cfg)
  tx = optimizer.from_config(cfg, pipeline.steps_per_epoch(len(src), cfg.batch_size))
  state = jax.device_put(steps.init_state(params, batch_stats, tx, 0), sharding.replicated(mesh))
  feed = feeds.StreamFeed(
    src, src, mesh=mesh, batch_size=cfg.batch_size, seed=0, epochs=None, train_step=steps.make_train_step(mdef, tx, cfg),
    eval_step=None, fields=pipeline.train_fields(b), compiler_options=xla_options.compiler_options("cpu"),
  )  # fmt: skip
  state, acc, _ = feed.run(state, 0, 0, 3)  # compiles, and fills grain's prefetch
  jax.block_until_ready(acc)
  # As the trainer runs: steps dispatched one after another, the host reading ahead, one sync at the end.
  t = time.perf_counter()
  state, acc, wait = feed.run(state, 0, 3, steps_timed, acc)
  jax.block_until_ready(acc)
  seconds = time.perf_counter() - t
  stream = {
    "kind": "stream", "arch": "custom", "batch": cfg.batch_size, "image_size": cfg.image_size,
    "train_examples": len(src), "steps_timed": steps_timed, "images_per_s": round(steps_timed * cfg.batch_size / seconds, 2),
    "input_wait_frac": round(wait / seconds, 4),
  }  # fmt: skip
  step = train_throughput.bench("custom", cfg.batch_size, cfg.image_size, "float32", steps_timed, "auto")
  stream["vs_step_only"] = round(stream["images_per_s"] / step["images_per_s"], 3)
  return [{"kind": "step_only", **step}, stream]


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
  p.add_argument("--detect", type=int, default=200, help="photos built with --crop detect (0: none)")
  p.add_argument("--stream-steps", type=int, default=40, help="train steps timed from the largest collection")
  p.add_argument("--work", default="/tmp/jaxface_scale", help="where the images and datasets go (kept for reruns)")
  p.add_argument("--name", default="build_scale_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  work = Path(a.work)
  work.mkdir(parents=True, exist_ok=True)
  rows = []
  t = time.perf_counter()
  everything = collection(work, max(a.sizes))
  print(f"generated {len(everything)} images in {time.perf_counter() - t:.0f} s", flush=True)
  for n in sorted(a.sizes):
    m = write_manifest(work / f"synthetic_{n}.csv", everything[:n])
    r = {"kind": "build", "size": n, **build(m, work / f"tfds_{n}", "as-is")}
    rows.append(r)
    print(f"build {n:7d}: {r['images_per_s']:7.1f} img/s, peak RSS {r['peak_rss_mb']} MB", flush=True)
  if a.detect:
    m = write_manifest(work / f"photos_{a.detect}.csv", photos(work, a.detect))
    r = {"kind": "build", "size": a.detect, **build(m, work / "tfds_photos", "detect")}
    rows.append(r)
    print(
      f"detect {a.detect}: {r['images_per_s']:.1f} photos/s, {r['built']} built, {r['skipped']} skipped", flush=True
    )
  if a.stream_steps:
    largest = work / f"synthetic_{max(a.sizes)}.csv"
    rows += stream_vs_step(largest, work / f"tfds_{max(a.sizes)}", a.stream_steps)
    print(f"stream: {rows[-1]['images_per_s']} img/s = {rows[-1]['vs_step_only']}x step only", flush=True)
  import jax

  meta = common.provenance("build_scale", t0, platform=jax.default_backend(), workers=parallel.default_workers())
  common.write(a.name, rows, meta)


if __name__ == "__main__":
  main()
