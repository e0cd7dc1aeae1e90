"""How far each XLA:CPU convolution path's float32 gradient is from a float64 reference.

  python benchmarks/xla_cpu_precision.py [--archs custom mobilenet_v2 resnet50] [--name xla_cpu_precision]

The evaluation-mode gradient of the joint loss (4 random 32 px images) under
XLA's default (YNNPACK convolutions) and under jaxface's compiler options
(Eigen convolutions), each as ||g - g64|| / ||g64|| against the same network in
float64 (``jax.enable_x64``). What tests/test_xla_options.py bounds. Host-dependent:
record the CPU (the file does).
"""

from __future__ import annotations

import argparse
import time

import common
import jax
import numpy as np
from flax import nnx

from jaxface.models import get_model
from jaxface.training import losses
from jaxface.xla import options as xla_options


def _flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree.leaves(tree)])


def relative_errors(arch: str) -> dict:
  model = get_model(arch, image_size=32)  # no compute dtype: float64 weights and inputs compute in float64
  graph, params, batch_stats = nnx.split(
    nnx.view(model, deterministic=True, use_running_average=True), nnx.Param, nnx.BatchStat
  )
  x = np.random.default_rng(0).random((4, 32, 32, 3), np.float32)
  batch = {"age": np.array([3, 25, 47, 80]), "gender": np.array([0, 1, 0, 1])}
  grad = jax.grad(lambda p, b, x: losses.joint(nnx.merge(graph, p, b)(x), batch, losses.Objective(0.1, 1.0))[0])
  with jax.enable_x64(True):
    f64 = lambda t: jax.tree.map(lambda v: np.asarray(v, np.float64), t)
    ref = _flat(jax.jit(grad)(f64(params), f64(batch_stats), np.asarray(x, np.float64)))
  rel = lambda g: float(np.linalg.norm(_flat(g) - ref) / np.linalg.norm(ref))
  return {
    "arch": arch,
    "xla_default_rel_err": rel(jax.jit(grad)(params, batch_stats, x)),
    "jaxface_rel_err": rel(jax.jit(grad, compiler_options=xla_options.compiler_options("cpu"))(params, batch_stats, x)),
  }


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--archs", nargs="+", default=["custom", "mobilenet_v2", "resnet50"])
  p.add_argument("--name", default="xla_cpu_precision")
  a = p.parse_args()
  t0 = time.perf_counter()
  rows = []
  for arch in a.archs:
    rows.append(relative_errors(arch))
    print(
      f"{arch:13s} XLA default {rows[-1]['xla_default_rel_err']:.2e}  jaxface {rows[-1]['jaxface_rel_err']:.2e}",
      flush=True,
    )
  common.write(a.name, rows, common.provenance("xla_cpu_precision", t0))


if __name__ == "__main__":
  main()
