"""Input pipeline throughput: one training epoch of subset5000, images/s.

  python benchmarks/input_pipeline.py --data ../shared/datasets/utkface/UTKFace.tar.gz

Times --repeats epochs of each and reports the median (and every run: this
machine's speed varies from run to run). Measures (1) the host pipeline alone: grain over the TFDS array_record source,
seeded shuffle, batch of uint8; and (2) the full pipeline: the same batches
moved to the device and augmented there (rescale, flip, translate,
brightness/contrast), as the trainer does. Writes a JSON result to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import jax

from jaxface import provenance
from jaxface.data import augment, pipeline, prepare


def epoch(ds, steps: int, step_fn=None, num_threads: int = 2) -> float:
  """Seconds for ``steps`` batches (after one warm-up batch)."""
  it = pipeline.iterate(ds, num_threads=num_threads)
  out = next(it)
  if step_fn is not None:
    jax.block_until_ready(step_fn(0, out["image"]))
  t = time.perf_counter()
  for i in range(steps):
    out = next(it)
    if step_fn is not None:
      out = step_fn(i + 1, out["image"])
  jax.block_until_ready(out)
  return time.perf_counter() - t


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data")
  p.add_argument("--tfds-dir")
  p.add_argument("--batch-size", type=int, default=64)
  p.add_argument("--threads", type=int, default=2)
  p.add_argument("--repeats", type=int, default=5, help="epochs timed for each figure; the median is reported")
  p.add_argument(
    "--out",
    default=str(
      Path(__file__).parent / "results" / f"input_pipeline_{jax.default_backend()}-{os.cpu_count()}cores.json"
    ),
  )
  args = p.parse_args()
  t0 = time.perf_counter()
  b = prepare.prepare(args.data, "subset5000", tfds_dir=args.tfds_dir)
  src = b.as_data_source("train")
  steps = pipeline.steps_per_epoch(len(src), args.batch_size) - 1  # one batch warms up
  ds = pipeline.train_dataset(
    src, batch_size=args.batch_size, seed=0, num_epochs=1
  )  # each timing starts a fresh iterator at step 0

  @jax.jit
  def on_device(step, images):
    return augment.augment(jax.random.fold_in(jax.random.key(0), step), augment.rescale(images))

  n = steps * args.batch_size
  host = sorted(n / epoch(ds, steps, num_threads=args.threads) for _ in range(args.repeats))
  full = sorted(
    n / epoch(ds, steps, lambda i, x: on_device(i, x), num_threads=args.threads) for _ in range(args.repeats)
  )
  result = {
    "benchmark": "input_pipeline",
    "dataset": f"utk_face/{b.builder_config.name}",
    "split": "train",
    "batch_size": args.batch_size,
    "threads": args.threads,
    "images": n,
    "repeats": args.repeats,
    "host_images_per_s": round(statistics.median(host), 1),
    "full_images_per_s": round(statistics.median(full), 1),
    "host_images_per_s_each": [round(v, 1) for v in host],
    "full_images_per_s_each": [round(v, 1) for v in full],
    "full_includes": "host pipeline + transfer + on-device rescale and augmentation (jit, block_until_ready)",
    **provenance.record(time.perf_counter() - t0),
  }
  Path(args.out).parent.mkdir(parents=True, exist_ok=True)
  Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
