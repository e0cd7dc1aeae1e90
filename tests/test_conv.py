"""Convolutions with a small output as patches times the kernel, and the strided-slice max-pools: XLA's numbers,
forward and backward, and the patches taken only where they should be."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.models import custom
from jaxface.xla import conv


def _rel(a, b) -> float:
  return float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-12))


def _grads(f, x, w, cot):
  return jax.jit(jax.grad(lambda x, w: jnp.sum(f(x, w) * cot), argnums=(0, 1)))(x, w)


@pytest.mark.parametrize(
  "side,k,stride,padding",
  [(4, 3, 1, ((1, 1), (1, 1))), (7, 3, 2, ((1, 1), (1, 1))), (3, 3, 1, "SAME"), (8, 1, 2, "VALID"), (5, 2, 2, "SAME")],
)
def test_small_outputs_match_xla_forward_and_backward(side, k, stride, padding):
  rng = np.random.default_rng(side * 10 + k)
  x = jnp.asarray(rng.normal(size=(3, side, side, 16)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, 16, 24)), jnp.float32)
  args = ((stride, stride), padding)
  dn = ("NHWC", "HWIO", "NHWC")
  ref = lambda x, w: jax.lax.conv_general_dilated(x, w, *args, dimension_numbers=dn)  # noqa: E731
  got = lambda x, w: conv.conv_general_dilated(x, w, *args, dimension_numbers=dn)  # noqa: E731
  assert max(ref(x, w).shape[1:3]) <= conv.SMALL  # the patches' case
  assert "convolution" not in jax.jit(got).lower(x, w).as_text()  # on CPU: a dot, no convolution
  assert got(x, w).shape == ref(x, w).shape
  assert _rel(jax.jit(got)(x, w), ref(x, w)) < 1e-5
  cot = jnp.asarray(rng.normal(size=ref(x, w).shape), jnp.float32)
  for a, b in zip(_grads(got, x, w, cot), _grads(ref, x, w, cot), strict=True):
    assert _rel(a, b) < 1e-5


def test_large_outputs_dilations_and_groups_stay_xla_convolutions():
  x, w = jnp.ones((1, 16, 16, 8)), jnp.ones((3, 3, 8, 8))
  dn = ("NHWC", "HWIO", "NHWC")
  cases = [
    lambda x, w: conv.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn),  # 16x16 out
    lambda x, w: conv.conv_general_dilated(x, w, (4, 4), "SAME", rhs_dilation=(2, 2), dimension_numbers=dn),
    lambda x, w: conv.conv_general_dilated(x, w[..., :4, :], (4, 4), "SAME", dimension_numbers=dn,
                                           feature_group_count=2),
  ]  # fmt: skip
  for f in cases:
    assert "convolution" in jax.jit(f).lower(x, w).as_text()


def test_an_nnx_conv_with_it_keeps_its_parameters_and_numbers():
  """Models pass it as nnx.Conv's conv_general_dilated: same parameters, so weights and checkpoints load unchanged."""
  plain = nnx.Conv(16, 8, (3, 3), (2, 2), padding=((1, 1), (1, 1)), rngs=nnx.Rngs(0))
  ours = nnx.Conv(16, 8, (3, 3), (2, 2), padding=((1, 1), (1, 1)), rngs=nnx.Rngs(0),
                  conv_general_dilated=conv.conv_general_dilated)  # fmt: skip
  assert jax.tree.map(jnp.shape, nnx.state(plain)) == jax.tree.map(jnp.shape, nnx.state(ours))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 16)), jnp.float32)
  assert _rel(ours(x), plain(x)) < 1e-5


@pytest.mark.parametrize("side", [8, 9])  # an odd side: the last row and column are dropped, as VALID pooling does
def test_custom_pool_is_max_pool_forward_and_backward(side):
  x = jnp.asarray(np.random.default_rng(side).permutation(2 * side * side * 3).reshape(2, side, side, 3), jnp.float32)
  ref = lambda x: nnx.max_pool(x, (2, 2), (2, 2))  # noqa: E731  (distinct values: no ties)
  assert jnp.array_equal(custom._pool(x), ref(x))
  cot = jnp.asarray(np.random.default_rng(1).normal(size=ref(x).shape), jnp.float32)
  g = lambda f: jax.grad(lambda x: jnp.sum(f(x) * cot))(x)  # noqa: E731
  assert jnp.array_equal(g(custom._pool), g(ref))
