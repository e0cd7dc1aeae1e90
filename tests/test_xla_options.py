"""The CPU compiler options: in effect where they should be, absent elsewhere, and gradients as exact as float32 allows."""

import re

import jax
import jaxlib
import numpy as np
import pytest
from flax import nnx

from jaxface.models import get_model
from jaxface.training import losses
from jaxface.xla import options as xla_options

pytestmark = pytest.mark.skipif(
  not jaxlib.__version__.startswith("0.10."), reason=f"the options name jaxlib 0.10's enums (here {jaxlib.__version__})"
)


def test_cpu_only_and_the_users_xla_flags_win(monkeypatch):
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  assert xla_options.compiler_options("cpu") == xla_options.CPU_OFF_YNNPACK
  assert xla_options.compiler_options("gpu") is None and xla_options.compiler_options("tpu") is None
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution")
  assert xla_options.compiler_options("cpu") is None


def _flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree.leaves(tree)])


@pytest.mark.parametrize("arch", ["custom", "mobilenet_v2", "resnet50"])  # plain, depthwise, strided 1x1, and dot convs
def test_convolutions_leave_ynnpack_and_gradients_match_float64(monkeypatch, arch):
  """Each path's float32 gradient against a float64 reference of the same network.

  jaxface's path (Eigen convolutions) agrees to float32 rounding (~1e-6). XLA's default (YNNPACK
  convolutions) was 9.7e-4 off for ResNet-50 on an AVX512-BF16 host (benchmarks/results/xla_cpu_precision.json),
  the size of bf16-like rounding, so its bound is looser. A wrong kernel is off by O(1), beyond both bounds.
  """
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  model = get_model(arch, image_size=32)  # no compute dtype: float64 weights and inputs compute in float64
  graph, params, batch_stats = nnx.split(
    nnx.view(model, deterministic=True, use_running_average=True), nnx.Param, nnx.BatchStat
  )
  rng = np.random.default_rng(0)
  x = rng.random((4, 32, 32, 3), np.float32)
  batch = {"age": np.array([3, 25, 47, 80]), "gender": np.array([0, 1, 0, 1])}

  def loss(params, batch_stats, x):
    # Evaluation mode: batch-norm over 4 examples at 1x1 spatial size would amplify rounding past any bound.
    return losses.joint(nnx.merge(graph, params, batch_stats)(x), batch, losses.Objective(0.1, 1.0))[0]

  grad = jax.grad(loss)
  plain = jax.jit(grad).lower(params, batch_stats, x).compile()
  tuned = jax.jit(grad, compiler_options=xla_options.compiler_options("cpu")).lower(params, batch_stats, x).compile()

  def ynn_convs(compiled):  # convolutions inside the computations that YNNPACK fusions call
    text = compiled.as_text()
    called = re.findall(r"calls=%?([\w.-]+)[^\n]*\"kind\":\"__ynn_fusion\"", text)
    bodies = dict(re.findall(r"^%?([\w.-]+) [^\n]*\{\n(.*?)\n\}", text, re.M | re.S))
    return sum(bodies[c].count(" convolution(") for c in called)

  assert ynn_convs(plain) > 0, "XLA's default no longer sends convolutions to YNNPACK: revisit xla_options"
  assert ynn_convs(tuned) == 0
  with jax.enable_x64(True):
    f64 = lambda t: jax.tree.map(lambda v: np.asarray(v, np.float64), t)
    ref = _flat(jax.jit(grad)(f64(params), f64(batch_stats), np.asarray(x, np.float64)))
  rel = lambda g: np.linalg.norm(_flat(g) - ref) / np.linalg.norm(ref)
  assert rel(tuned(params, batch_stats, x)) <= 1e-5  # jaxface's path
  assert rel(plain(params, batch_stats, x)) <= 1e-2  # XLA's default: reduced precision on some hosts


def test_the_compile_cache_refuses_a_folder_others_can_write(tmp_path, monkeypatch):
  """Compiled code from a folder that group or others may write to would run in every predict process: refused."""
  from jaxface.xla import compile_cache

  monkeypatch.setenv("JAXFACE_XLA_CACHE", str(tmp_path / "xla"))
  d = compile_cache.directory()
  assert compile_cache.unsafe(d) is None and (d.stat().st_mode & 0o777) == 0o700
  d.chmod(0o777)
  assert "writable by group or others" in compile_cache.unsafe(d)
