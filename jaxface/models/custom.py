"""The classic two-branch CNN: a shared conv trunk, then an age branch and a gender branch.

trunk:  conv-ReLU, conv-ReLU (full resolution) -> max-pool -> BN -> conv-ReLU -> max-pool
branch: [conv-ReLU -> max-pool -> BN] x 2 -> conv-ReLU -> flatten -> dense-ReLU-dropout -> 1 unit

Default widths: trunk 32/32/48, branches 48/48/48, dense 128. Its parameters and
forward FLOPs at 128x128 are in docs/models.md's Models table, which
tests/test_models.py reads and checks; the two full-resolution 3x3 convs are
most of its FLOPs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.models.heads import ZEROS, Head, age_and_gender, age_bias_init, age_units


def _conv(cin: int, cout: int, *, dtype, rngs: nnx.Rngs) -> nnx.Conv:
  return nnx.Conv(cin, cout, (3, 3), padding="SAME", dtype=dtype, rngs=rngs)


def _bn(c: int, *, dtype, rngs: nnx.Rngs) -> nnx.BatchNorm:
  return nnx.BatchNorm(c, momentum=0.9, use_running_average=True, dtype=dtype, rngs=rngs)


def _pool(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2 (``nnx.max_pool``'s numbers), as the maximum of 4 strided slices: its gradient is
  selects that XLA fuses with their neighbours, where reduce_window's builds index tensors the size of the input
  (benchmarks/results/xla_profile_cpu.json)."""
  b, h, w, c = x.shape
  oh, ow = h // 2, w // 2
  taps = [
    jax.lax.slice(x, (0, i, j, 0), (b, i + 2 * oh - 1, j + 2 * ow - 1, c), (1, 2, 2, 1)) for i in (0, 1) for j in (0, 1)
  ]
  return functools.reduce(jnp.maximum, taps)


class Branch(nnx.Module):
  def __init__(
    self,
    cin: int,
    widths: Sequence[int],
    image_size: int,
    hidden: Sequence[int],
    dropout: float,
    *,
    units: int = 1,
    bias_init=ZEROS,
    dtype,
    rngs,
  ):
    a, b, c = widths
    self.conv1, self.bn1 = _conv(cin, a, dtype=dtype, rngs=rngs), _bn(a, dtype=dtype, rngs=rngs)
    self.conv2, self.bn2 = _conv(a, b, dtype=dtype, rngs=rngs), _bn(b, dtype=dtype, rngs=rngs)
    self.conv3 = _conv(b, c, dtype=dtype, rngs=rngs)
    side = image_size // 16  # trunk pools twice, the branch twice
    self.head = Head(side * side * c, hidden, dropout, units=units, bias_init=bias_init, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None) -> jax.Array:
    x = self.bn1(_pool(jax.nn.relu(self.conv1(x))))
    x = self.bn2(_pool(jax.nn.relu(self.conv2(x))))
    x = jax.nn.relu(self.conv3(x))
    return self.head(x.reshape(x.shape[0], -1), rngs=rngs)


class CustomCNN(nnx.Module):
  """Images (B, S, S, 3) in [0, 1] -> {'age': (B,), 'gender_logit': (B,)} (+ 'age_logits'); S divisible by 16."""

  def __init__(
    self,
    *,
    image_size: int = 128,
    trunk: Sequence[int] = (32, 32, 48),
    branch: Sequence[int] = (48, 48, 48),
    hidden: Sequence[int] = (128,),
    dropout: float = 0.3,
    age_head: str = "regression",
    dtype=None,
    rngs: nnx.Rngs,
  ):
    if image_size % 16:
      raise ValueError(f"custom CNN needs an image size divisible by 16, got {image_size}")
    a, b, c = trunk
    self.conv1, self.conv2 = _conv(3, a, dtype=dtype, rngs=rngs), _conv(a, b, dtype=dtype, rngs=rngs)
    self.bn1 = _bn(b, dtype=dtype, rngs=rngs)
    self.conv3 = _conv(b, c, dtype=dtype, rngs=rngs)
    self.age_head = age_head
    self.age = Branch(
      c,
      branch,
      image_size,
      hidden,
      dropout,
      units=age_units(age_head),
      bias_init=age_bias_init(age_head),
      dtype=dtype,
      rngs=rngs,
    )
    self.gender = Branch(c, branch, image_size, hidden, dropout, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    x = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(x))))
    x = self.bn1(_pool(x))
    x = _pool(jax.nn.relu(self.conv3(x)))
    return age_and_gender(self.age, self.gender, x, self.age_head, rngs)
