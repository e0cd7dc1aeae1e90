"""The CPU compiler options: in effect where they should be, absent elsewhere, and the same gradients."""

import re

import jax
import jaxlib
import numpy as np
import pytest
from flax import nnx

from jaxface import config as config_lib
from jaxface import losses, steps, xla_options

pytestmark = pytest.mark.skipif(
  not jaxlib.__version__.startswith("0.10."), reason=f"the options name jaxlib 0.10's enums (here {jaxlib.__version__})"
)


def test_cpu_only_and_the_users_xla_flags_win(monkeypatch):
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  assert xla_options.compiler_options("cpu") == xla_options.CPU_CONV_OFF_YNNPACK
  assert xla_options.compiler_options("gpu") is None and xla_options.compiler_options("tpu") is None
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution")
  assert xla_options.compiler_options("cpu") is None


@pytest.mark.parametrize("arch", ["custom", "mobilenet_v2", "resnet50"])  # plain, depthwise and strided 1x1 convs
def test_convolutions_leave_ynnpack_and_gradients_stay_the_same(monkeypatch, arch):
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  cfg = config_lib.make(arch, image_size=32, batch_size=4)
  mdef, params, rest = steps.init_model(cfg)
  rng = np.random.default_rng(0)
  x = rng.random((4, 32, 32, 3), np.float32)
  batch = {"age": np.array([3, 25, 47, 80]), "gender": np.array([0, 1, 0, 1])}

  def loss(params):
    # Evaluation mode: batch-norm over 4 examples at 1x1 spatial size would amplify rounding past any bound.
    model = nnx.merge(mdef.eval, params, rest)
    return losses.joint(model(x), batch, 0.1, 1.0)[0]

  grad = jax.grad(loss)
  plain = jax.jit(grad).lower(params).compile()
  tuned = jax.jit(grad, compiler_options=xla_options.compiler_options("cpu")).lower(params).compile()

  def ynn_convs(compiled):  # convolutions inside the computations that YNNPACK fusions call
    text = compiled.as_text()
    called = re.findall(r"calls=%?([\w.-]+)[^\n]*\"kind\":\"__ynn_fusion\"", text)
    bodies = dict(re.findall(r"^%?([\w.-]+) [^\n]*\{\n(.*?)\n\}", text, re.M | re.S))
    return sum(bodies[c].count(" convolution(") for c in called)

  assert ynn_convs(plain) > 0, "XLA's default no longer sends convolutions to YNNPACK: revisit xla_options"
  assert ynn_convs(tuned) == 0
  # Float32 sums in another order: the gradient agrees to float noise (~1e-6 measured); a wrong kernel is off by O(1).
  a = np.concatenate([np.ravel(v) for v in jax.tree.leaves(plain(params))])
  b = np.concatenate([np.ravel(v) for v in jax.tree.leaves(tuned(params))])
  assert np.linalg.norm(b - a) <= 1e-4 * np.linalg.norm(a)
