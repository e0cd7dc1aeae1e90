"""Depthwise convolution on this platform: XLA's grouped convolution against jaxface's shifted multiply-adds.

  python benchmarks/depthwise.py [--steps 5] [--peer [--peer-python PY]] [--rehearse] [--name NAME]

Three parts, back to back in one process (the peer in a subprocess), so that
the ratios compare like with like on this host:
  1. the layer alone: a 3x3 depthwise conv on (32, 32, 32, 192) NHWC, stride 1
     and 2, forward and forward+backward under jit, each formulation;
  2. MobileNetV2's real train step (128 px, batch 32) and evaluation-mode
     forward (batch 1 and 64), with every DepthwiseConv set to each formulation;
  3. with ``--peer``, the PyTorch peer's MobileNetV2 rows (benchmarks/peer_torch.py),
     same shapes.
Writes benchmarks/results/depthwise_<platform>.json with the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import common
import jax
import jax.numpy as jnp
import numpy as np
import train_throughput
from flax import nnx

from jaxface import config as config_lib
from jaxface.inference import InferenceModel, Restored
from jaxface.training import model_def
from jaxface.xla import depthwise

FORMS = ("grouped", "shifted")
# The measured shapes, and tiny ones that check the script end to end in seconds (--rehearse).
SHAPES = {
  "measure": dict(layer=(32, 32, 32, 192), batch=32, size=128, infer=(1, 64)),
  "rehearse": dict(layer=(2, 8, 8, 16), batch=2, size=32, infer=(1, 2)),
}


def layer_rows(n_steps: int, sh: dict) -> list[dict]:
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=sh["layer"]), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 1, sh["layer"][-1])), jnp.float32)
  rows = []
  for stride in (1, 2):
    outs = {}
    for form in FORMS:
      f = lambda x, w, form=form, stride=stride: depthwise.depthwise_conv(x, w, stride, 1, form)  # noqa: E731
      fwd = jax.jit(f)
      fwd_bwd = jax.jit(jax.value_and_grad(lambda x, w, f=f: jnp.sum(f(x, w) ** 2), argnums=(0, 1)))
      outs[form] = fwd(x, w)
      for what, fn in (("forward", fwd), ("forward+backward", fwd_bwd)):
        _, times = common.timed(lambda fn=fn: fn(x, w), n_steps, warmup=1, sync=jax.block_until_ready)
        rows.append(
          {
            "part": "layer",
            "stride": stride,
            "pass": what,
            "impl": form,
            "ms_median": round(1e3 * float(np.median(times)), 2),
          }
        )
        print(f"layer stride {stride} {what:16s} {form:8s} {rows[-1]['ms_median']:8.2f} ms", flush=True)
    diff = float(jnp.max(jnp.abs(outs["grouped"] - outs["shifted"])) / jnp.max(jnp.abs(outs["grouped"])))
    for r in rows[-4:]:
      r["max_rel_diff"] = diff
  return rows


def model_rows(n_steps: int, sh: dict) -> list[dict]:
  rows = []
  for form in FORMS:
    r = train_throughput.bench("mobilenet_v2", sh["batch"], sh["size"], "float32", n_steps, "auto", depthwise=form)
    rows.append({"part": "train_step", "framework": "jax", **r})
    print(f"train mobilenet_v2 b{sh['batch']} {sh['size']}px {form:8s} {r['images_per_s']:8.1f} img/s", flush=True)
  cfg = config_lib.make("mobilenet_v2", image_size=sh["size"])
  mdef, params, batch_stats = model_def.init_model(cfg)
  for form in FORMS:
    model = depthwise.set_impl(nnx.merge(mdef.eval, params, batch_stats), form)
    graph, p, bs = nnx.split(model, nnx.Param, nnx.BatchStat)
    predict = InferenceModel(Restored(cfg, graph, p, bs, 0))  # the path evaluate and predict take
    for b in sh["infer"]:
      x = jax.device_put(np.random.default_rng(0).integers(0, 256, (b, sh["size"], sh["size"], 3), np.uint8))
      first, times = common.timed(lambda x=x, f=predict: f(x), n_steps * 2, warmup=2, sync=jax.block_until_ready)
      r = common.row("jax", "mobilenet_v2", b, sh["size"], "float32", jax.devices()[0].device_kind, first, times, None)
      rows.append({"part": "inference", **r, "depthwise": form})
      print(f"inference mobilenet_v2 b{b:<3d} {form:8s} {r['images_per_s']:8.1f} img/s", flush=True)
  return rows


PEER = """
import json, sys, torch, peer_torch
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
rows = [dict(part="train_step", **peer_torch.train_row("mobilenet_v2", {batch}, {size}, "float32", False, dev, {n}))]
rows += [dict(part="inference", **r) for r in peer_torch.inference_rows("mobilenet_v2", {size}, dev, {infer}, {n2})]
print("ROWS" + json.dumps(rows))
"""


def peer_rows(n_steps: int, python: str, sh: dict) -> list[dict]:
  out = subprocess.run(
    [python, "-c", PEER.format(n=n_steps, n2=n_steps * 2, batch=sh["batch"], size=sh["size"], infer=list(sh["infer"]))], cwd=common.ROOT / "benchmarks",
    capture_output=True, text=True, check=True,
  ).stdout  # fmt: skip
  rows = json.loads(out.split("ROWS", 1)[1])
  for r in rows:
    print(f"peer {r['part']:10s} mobilenet_v2 b{r['batch']:<3d} {r['images_per_s']:8.1f} img/s", flush=True)
  return rows


def ratios(rows: list[dict]) -> dict:
  """images/s of jaxface (each formulation) over the peer's, per (part, batch)."""
  out = {}
  for r in rows:
    if r.get("framework") == "torch":
      for j in rows:
        if j.get("framework") == "jax" and j["part"] == r["part"] and j["batch"] == r["batch"]:
          out[f"{r['part']}_b{r['batch']}_{j['depthwise']}_vs_peer"] = round(j["images_per_s"] / r["images_per_s"], 3)
  return out


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--peer", action="store_true", help="also run the PyTorch peer")
  p.add_argument("--peer-python", default=sys.executable, help="a Python with torch, for the peer (default: this one)")
  p.add_argument("--rehearse", action="store_true", help="tiny shapes: checks the script, measures nothing")
  p.add_argument("--name")
  a = p.parse_args()
  t0 = time.perf_counter()
  sh = SHAPES["rehearse" if a.rehearse else "measure"]
  rows = layer_rows(a.steps, sh) + model_rows(a.steps, sh)
  if a.peer:
    rows += peer_rows(a.steps, a.peer_python, sh)
  platform = jax.devices()[0].platform
  meta = common.provenance("depthwise", t0, platform=platform, shapes=sh, ratios=ratios(rows))
  print(json.dumps(meta["ratios"], indent=1))
  common.write(a.name or f"depthwise_{platform}", rows, meta)


if __name__ == "__main__":
  main()
