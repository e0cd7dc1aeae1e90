"""Model shapes, sizes and the figures the docs state."""

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface import config as config_lib
from jaxface import models
from jaxface.models import get_model, mode
from jaxface.training import model_def, optimizer, steps
from jaxface.xla import conv, depthwise


def _params_and_flops(arch: str, size: int, monkeypatch) -> tuple[int, float]:
  monkeypatch.setattr(conv, "SMALL", 0)
  # XLA counts the convolution's multiply-adds, not those of the CPU's shifted form (the same arithmetic), nor the
  # padding's zeros that the CPU's patches (jaxface.conv) multiply too
  model = depthwise.set_impl(get_model(arch, image_size=size), "grouped")
  g, params, batch_stats = nnx.split(mode(model, train=False), nnx.Param, ...)
  f = jax.jit(lambda p, r, x: nnx.merge(g, p, r)(x))
  cost = f.lower(params, batch_stats, jnp.zeros((1, size, size, 3))).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return sum(x.size for x in jax.tree.leaves(params)), cost["flops"] / 1e9


def documented_sizes() -> dict[str, tuple[float, float]]:
  """docs/models.md's Models table: arch -> (millions of parameters, GFLOPs an image at 128 px)."""
  text = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
  table = text.split("## Models", 1)[1].split("\n\n")[1]
  rows = {}
  for line in table.splitlines()[2:]:
    cells = [c.strip() for c in line.strip("|").split("|")]
    rows[cells[0].strip("`")] = (float(re.match(r"[\d.]+", cells[2]).group()), float(cells[3]))
  return rows


@pytest.mark.parametrize("arch", models.ARCHS)
def test_sizes_as_documented(arch, monkeypatch):
  """The figures in docs/models.md's Models table (128 px, forward), read from the page itself."""
  mparams, gflops = documented_sizes()[arch]
  n, g = _params_and_flops(arch, 128, monkeypatch)
  assert (round(n / 1e6, 2), round(g, 2)) == (mparams, gflops)
  if arch == "custom":
    assert g <= 0.6


@pytest.mark.parametrize("arch, size", [("custom", 64), ("mobilenet_v2", 64), ("resnet50", 64)])
def test_outputs(arch, size):
  model = get_model(arch, image_size=size)
  a, b = np.random.default_rng(0).random((2, size, size, 3), np.float32)
  forward = nnx.jit(lambda m, x: m(x))  # op by op, MobileNetV2 took ~30 s
  out = forward(model, jnp.stack([a, b, a]))
  assert out["age"].shape == (3,) and out["gender_logit"].shape == (3,)
  assert out["age"].dtype == jnp.float32
  for k in ("age", "gender_logit"):  # evaluation mode: the same face gets the same answer
    np.testing.assert_allclose(out[k][2], out[k][0], rtol=1e-6)
  # ... and another face another. A fresh MobileNetV2 in evaluation mode shrinks its activations to ~1e-9
  # (torchvision's init, unit running variance), so its outputs round to the heads' biases: look at its features.
  signal = np.asarray(forward(model.backbone, jnp.stack([a, b])) if arch == "mobilenet_v2" else out["age"])
  assert np.abs(signal[1] - signal[0]).max() > 1e-6 * np.abs(signal).max() > 0


def test_custom_needs_size_divisible_by_16():
  with pytest.raises(ValueError, match="divisible by 16"):
    get_model("custom", image_size=100)


def test_bfloat16_compute_keeps_float32_params():
  cfg = config_lib.make("custom", image_size=32, dtype="bfloat16", widths={"trunk": [4, 4, 8], "branch": [8, 8, 8]})
  mdef, params, batch_stats = model_def.init_model(cfg)
  assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype("float32")}
  tx = optimizer.from_config(cfg, 10)
  state = steps.init_state(params, batch_stats, tx, 0)
  batch = {
    "image": np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), np.uint8),
    "age": np.arange(4) * 10,
    "gender": np.array([0, 1, 0, 1]),
  }
  new, sums = jax.jit(steps.make_train_step(mdef, tx, cfg))(state, batch)
  assert np.isfinite(float(sums["loss"])) and int(new["step"]) == 1
  assert {x.dtype for x in jax.tree.leaves(new["params"])} == {jnp.dtype("float32")}
