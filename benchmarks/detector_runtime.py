"""The detector's network against its original runtime, on the same views, in one run: views/s on the CPU.

  python benchmarks/detector_runtime.py [--views 64] [--batches 1 2 4 8 16] [--steps 5] [--name detector_runtime_cpu]

The views are the detector's own: scikit-image's real photos (astronaut,
camera, chelsea, coffee) cut into views by ``cnn.views`` and letterboxed to
192x192, repeated up to --views. On them, in one process:
- the port (``Detector``'s jitted network, outputs brought to the host), at each
  of --batches, compiled with jaxface's XLA:CPU options (``xla_options``, what
  ``Detector`` uses) and with XLA's defaults (what it used before);
- LiteRT (``ai-edge-litert``) running the original ``.tflite`` one view at a
  time (its input is batch 1), with as many threads as the process has cores.
Median of --steps passes over all the views after a warm-up pass. The port's
face scores (at its largest batch) are compared with LiteRT's on every view.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import statistics
import time

import common
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxface.faces import cnn
from jaxface.xla import options as xla_options


def the_views(n: int, size: int) -> np.ndarray:
  from PIL import Image
  from skimage import data

  views = []
  for name in ("astronaut", "camera", "chelsea", "coffee"):
    img = Image.fromarray(getattr(data, name)()).convert("RGB")
    views += [v for v, _ in cnn.views(img, size)]
  return np.stack([views[i % len(views)] for i in range(n)])


def passes(fn, steps: int) -> float:
  fn()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--views", type=int, default=64)
  p.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--name", default="detector_runtime_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  model = cnn.load_model()
  views = the_views(a.views, model.size)
  n = len(views)
  graphdef, state = nnx.split(model)

  def net(state, images):
    return nnx.merge(graphdef, state)(images.astype(jnp.float32) / 127.5 - 1.0)

  rows, ours = [], {}
  for options_name, options in (("jaxface", xla_options.compiler_options("cpu")), ("xla_default", None)):
    fn = jax.jit(net, compiler_options=options)
    for b in a.batches:
      if n % b:
        raise SystemExit(f"--views {n} is not a multiple of batch {b}")

      def run(fn=fn, b=b):
        return [jax.device_get(fn(state, views[i : i + b])) for i in range(0, n, b)]

      s = passes(run, a.steps)
      if options_name == "jaxface":
        ours[b] = run()
      rows.append({"runtime": "jax", "xla_options": options_name, "batch": b, "views_per_s": round(n / s, 1)})
      print(rows[-1], flush=True)

  from ai_edge_litert.interpreter import Interpreter

  threads = len(os.sched_getaffinity(0))
  lite = Interpreter(model_path=str(cnn.cache_dir() / "face_detection_full_range.tflite"), num_threads=threads)
  lite.allocate_tensors()
  inp, outs = lite.get_input_details()[0]["index"], [o["index"] for o in lite.get_output_details()]
  x = views.astype(np.float32) / 127.5 - 1.0

  def run_lite():
    got = []
    for i in range(n):
      lite.set_tensor(inp, x[i : i + 1])
      lite.invoke()
      got.append([lite.get_tensor(o).copy() for o in outs])
    return got

  s = passes(run_lite, a.steps)
  lite_row = {"runtime": "litert", "threads": threads, "batch": 1, "views_per_s": round(n / s, 1)}
  rows.append(lite_row)
  print(rows[-1], flush=True)
  # The port's scores against LiteRT's (the logits, after the same sigmoid), on every view.
  want = np.concatenate([g[1].reshape(1, -1) for g in run_lite()])
  b = max(ours)
  got = np.concatenate([logits for _, logits in ours[b]])
  worst = float(np.abs(jax.nn.sigmoid(got) - jax.nn.sigmoid(want)).max())
  for r in rows:
    if r["runtime"] == "jax":
      r["vs_litert"] = round(r["views_per_s"] / lite_row["views_per_s"], 3)
  meta = common.provenance(
    "detector_runtime", t0, views=n, litert=importlib.metadata.version("ai-edge-litert"), cores=threads,
    detector_batch_cpu=cnn.BATCH["cpu"], max_score_difference_vs_litert=worst,
  )  # fmt: skip
  common.write(a.name, rows, meta)


if __name__ == "__main__":
  main()
