"""onnxruntime against jaxface's jitted XLA on the same model, in one run: images/s on the CPU.

  python benchmarks/onnx_runtime.py [--archs custom mobilenet_v2 faceres] [--batch 32] [--steps 10]

Each arch at its cpu preset's image size (random weights: the speed does not
depend on them), converted with ``jaxface.inference.jaxpr_onnx`` and checked
(``export.check_onnx``), then timed: JAX through ``InferenceModel`` (the path
evaluate and predict take, with jaxface's XLA options), onnxruntime through
``OnnxModel``'s session (CPU provider, all cores). And the detector's network
at 192 px, batch 16. Median of ``--steps`` timed batches after two warm-ups.
"""

from __future__ import annotations

import argparse
import time

import common
import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort

from jaxface import config as config_lib
from jaxface.inference import InferenceModel, Restored, export, jaxpr_onnx
from jaxface.training import model_def


def _session(graph):
  return ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])


def _pair(name: str, fn, shape, batch: int, n_steps: int, jax_fn=None) -> list[dict]:
  graph = jaxpr_onnx.convert(fn, shape, np.uint8)
  worst = export.check_onnx(graph, fn, shape)
  sess = _session(graph)
  x = np.random.default_rng(0).integers(0, 256, (batch, *shape[1:]), np.uint8)
  xd = jax.device_put(x)
  run_jax = jax_fn or jax.jit(fn)
  rows = []
  for runtime, run, sync in (
    ("jax", lambda: run_jax(xd), jax.block_until_ready),
    ("onnxruntime", lambda: sess.run(None, {"images": x}), lambda v: v),
  ):
    first, times = common.timed(run, n_steps, warmup=2, sync=sync)
    r = common.row(runtime, name, batch, shape[1], "float32", f"1x {jax.devices()[0].device_kind}", first, times, None)
    rows.append(r | {"max_abs_diff": worst})
    print(f"{name:13s} {runtime:12s} b{batch} {r['images_per_s']:9.1f} img/s", flush=True)
  rows[1]["vs_jax"] = round(rows[1]["images_per_s"] / rows[0]["images_per_s"], 3)
  return rows


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--archs", nargs="+", default=["custom", "mobilenet_v2", "faceres"])
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--name", default="onnx_runtime_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  rows = []
  for arch in a.archs:
    cfg = config_lib.make(arch, "cpu")
    mdef, params, batch_stats = model_def.init_model(cfg)
    params, batch_stats = jax.device_put((params, batch_stats))  # a loaded backbone's weights come as numpy
    model = InferenceModel(Restored(cfg, mdef.eval, params, batch_stats, 0))
    fn = lambda x, m=model: m.forward(m.restored.params, m.restored.batch_stats, x)  # noqa: E731
    rows += _pair(arch, fn, (1, cfg.image_size, cfg.image_size, 3), a.batch, a.steps, jax_fn=model)
  from jaxface.faces import cnn

  det = cnn.Detector()
  net = det.model
  fn = lambda x: net(x.astype(jnp.float32) / 127.5 - 1.0)  # noqa: E731
  rows += _pair("detector", fn, (1, net.size, net.size, 3), det.batch_size, a.steps)
  meta = common.provenance("onnx_runtime", t0, platform=jax.default_backend(), onnxruntime=ort.__version__)
  common.write(a.name, rows, meta)


if __name__ == "__main__":
  main()
