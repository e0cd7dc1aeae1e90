"""The depthwise convolution's formulations compute XLA's grouped convolution, forward and backward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.xla import depthwise


def _rel(a, b) -> float:
  return float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-12))


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("impl", ["shifted", "auto"])
def test_forward_and_gradients_match_lax_conv(impl, stride, k):
  rng = np.random.default_rng(k * 10 + stride)
  x = jnp.asarray(rng.normal(size=(2, 13, 12, 24)), jnp.float32)  # odd sizes: the last strided tap matters
  w = jnp.asarray(rng.normal(size=(k, k, 1, 24)), jnp.float32)
  p = (k - 1) // 2
  ref = lambda x, w: jax.lax.conv_general_dilated(  # noqa: E731
    x, w, (stride, stride), ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=24
  )
  got = lambda x, w: depthwise.depthwise_conv(x, w, stride, p, impl)  # noqa: E731
  assert got(x, w).shape == ref(x, w).shape
  assert _rel(jax.jit(got)(x, w), ref(x, w)) < 1e-4
  cot = jnp.asarray(rng.normal(size=ref(x, w).shape), jnp.float32)  # a random cotangent, not just sum()
  g_ref = jax.grad(lambda x, w: jnp.sum(ref(x, w) * cot), argnums=(0, 1))(x, w)
  g_got = jax.jit(jax.grad(lambda x, w: jnp.sum(got(x, w) * cot), argnums=(0, 1)))(x, w)
  for a, b in zip(g_got, g_ref, strict=True):
    assert _rel(a, b) < 1e-4


def test_module_keeps_nnx_convs_parameter_and_impl_is_settable():
  """Same parameter name and shape as nnx.Conv with one group per channel: weights and checkpoints load unchanged."""
  m = depthwise.DepthwiseConv(8, 3, 2, rngs=nnx.Rngs(0))
  ref = nnx.Conv(
    8, 8, (3, 3), (2, 2), padding=((1, 1), (1, 1)), feature_group_count=8, use_bias=False, rngs=nnx.Rngs(0)
  )
  assert m.kernel[...].shape == ref.kernel[...].shape
  ref.kernel[...] = m.kernel[...]
  x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 9, 9, 8)), jnp.float32)
  assert _rel(m(x), ref(x)) < 1e-5
  assert depthwise.set_impl(m, "grouped").impl == "grouped"
  with pytest.raises(ValueError, match="unknown depthwise impl"):
    depthwise.set_impl(m, "fft")


@pytest.mark.parametrize("platform, convolutions", [("cpu", 0), ("cuda", 1), ("tpu", 1)])
def test_auto_is_shifted_on_cpu_and_grouped_elsewhere(platform, convolutions):
  """The gate, seen in the program lowered for each platform (no GPU or TPU needed to lower for one)."""
  f = jax.jit(lambda x, w: depthwise.depthwise_conv(x, w, 1, 1))
  text = jax.export.export(f, platforms=[platform])(jnp.zeros((1, 8, 8, 4)), jnp.zeros((3, 3, 1, 4))).mlir_module()
  assert text.count("stablehlo.convolution") == convolutions
  assert ("feature_group_count = 4" in text) == bool(convolutions)  # grouped: one group per channel
  assert (text.count("stablehlo.slice") >= 9) != bool(convolutions)  # shifted: a slice for each of the 9 taps


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("per_in, per_out", [(2, 2), (3, 1), (1, 2)])
def test_grouped_conv_is_nnx_convs_forward_and_backward(per_in, per_out, stride):
  """GroupedConv (MobileFaceNet's 64 groups of 2) against nnx.Conv with the same groups, weights and bias; on this
  CPU it runs the shifted form, so this checks that form's numbers and its gradients."""
  groups = 4
  cin, cout = groups * per_in, groups * per_out
  m = depthwise.GroupedConv(cin, cout, 3, stride, groups=groups, rngs=nnx.Rngs(0))
  ref = nnx.Conv(cin, cout, (3, 3), (stride, stride), padding=((1, 1), (1, 1)), feature_group_count=groups,
                 rngs=nnx.Rngs(1))  # fmt: skip
  assert m.kernel[...].shape == ref.kernel[...].shape and m.bias[...].shape == ref.bias[...].shape
  rng = np.random.default_rng(stride)
  ref.kernel[...] = m.kernel[...]
  m.bias[...] = ref.bias[...] = jnp.asarray(rng.normal(size=cout), jnp.float32)
  x = jnp.asarray(rng.normal(size=(2, 11, 10, cin)), jnp.float32)
  assert _rel(nnx.jit(lambda m, x: m(x))(m, x), ref(x)) < 1e-5
  cot = jnp.asarray(rng.normal(size=ref(x).shape), jnp.float32)

  def grads(mod):
    return nnx.grad(lambda mod, x: jnp.sum(mod(x) * cot), argnums=(0, 1))(mod, x)

  (gm, gx), (rm, rx) = grads(m), grads(ref)
  assert _rel(gx, rx) < 1e-4
  assert _rel(gm["kernel"][...], rm["kernel"][...]) < 1e-4 and _rel(gm["bias"][...], rm["bias"][...]) < 1e-4
  assert _rel(depthwise.set_impl(m, "grouped")(x), ref(x)) < 1e-5  # XLA's own, as benchmarks compare
