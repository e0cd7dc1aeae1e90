"""Depthwise convolution that XLA:CPU runs fast: k*k shifted multiply-adds.

XLA:CPU's grouped convolution (``feature_group_count`` = channels) is slow, and
its backward pass slower still: MobileNetV2's train step ran at 0.10x the
PyTorch peer because of it. Written as k*k strided slices of the padded input,
each times one row of the kernel, the same convolution is one elementwise loop
nest forward and backward, which XLA fuses (benchmarks/depthwise.py measures
both, and the models with each).

Which formulation runs is chosen per platform when the function is lowered
(``lax.platform_dependent``), so a function exported for several platforms
carries both: ``shifted`` on CPU, XLA's grouped convolution elsewhere until an
accelerator measures otherwise. ``IMPLS`` names them for benchmarks and tests.
``GroupedConv`` does the same for a convolution in groups of a few channels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

IMPLS = ("auto", "grouped", "shifted")


def grouped(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
  """XLA's grouped convolution. x (B, H, W, C), kernel (k, k, 1, C), or (k, k, C / G, Cout) for G groups."""
  return lax.conv_general_dilated(
    x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
    dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1] // kernel.shape[2],
  )  # fmt: skip


def shifted(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
  """The same as ``grouped``, as k*k strided slices times kernel rows, summed in float32."""
  k = kernel.shape[0]
  b, h, w, c = x.shape
  xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
  acc = jnp.zeros((b, oh, ow, c), jnp.float32)
  for i in range(k):
    for j in range(k):
      tap = lax.slice(
        xp, (0, i, j, 0), (b, i + stride * (oh - 1) + 1, j + stride * (ow - 1) + 1, c), (1, stride, stride, 1)
      )
      acc = acc + (tap * kernel[i, j, 0]).astype(jnp.float32)
  return acc.astype(jnp.result_type(x, kernel))


def grouped_shifted(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
  """A grouped convolution with kernel (k, k, Cin / G, Cout) as ``Cin / G`` shifted depthwise ones over Cout: input
  channel i of each group, repeated for the group's outputs, times its row of the kernel."""
  per_in, cout = kernel.shape[2], kernel.shape[3]
  b, h, w, cin = x.shape
  groups = cin // per_in
  per_out = cout // groups
  x = x.reshape(b, h, w, groups, per_in)
  return sum(
    shifted(jnp.repeat(x[..., i], per_out, axis=-1), kernel[:, :, i : i + 1], stride, padding) for i in range(per_in)
  )


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: int, impl: str = "auto") -> jax.Array:
  """A depthwise (kernel (k, k, 1, C)) or grouped (kernel (k, k, C / G, Cout)) convolution in formulation ``impl``."""
  fast = shifted if kernel.shape[2] == 1 and kernel.shape[3] == x.shape[-1] else grouped_shifted
  if impl == "grouped":
    return grouped(x, kernel, stride, padding)
  if impl == "shifted":
    return fast(x, kernel, stride, padding)
  if impl != "auto":
    raise ValueError(f"unknown depthwise impl {impl!r}; choose one of {IMPLS}")
  return lax.platform_dependent(
    x, kernel, cpu=lambda x, w: fast(x, w, stride, padding), default=lambda x, w: grouped(x, w, stride, padding)
  )


class DepthwiseConv(nnx.Module):
  """A k x k depthwise conv, no bias, with ``nnx.Conv``'s parameter (``kernel``, shape (k, k, 1, C)).

  The parameter's name and shape are nnx.Conv's with ``feature_group_count=C``, so
  converted torchvision weights and existing checkpoints load unchanged.
  """

  def __init__(
    self, channels: int, k: int, stride: int = 1, *, same: bool = False, dtype=None, impl: str = "auto",
    rngs: nnx.Rngs,
  ):  # fmt: skip
    """``same``: TensorFlow's "SAME" padding (a stride-2 layer pads one more at the bottom and right), where the
    default is torch's symmetric ``(k - 1) // 2``."""
    if impl not in IMPLS:
      raise ValueError(f"unknown depthwise impl {impl!r}; choose one of {IMPLS}")
    init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")  # torchvision's (kaiming, fan_out)
    self.kernel = nnx.Param(init(rngs.params(), (k, k, 1, channels), jnp.float32))
    self.stride, self.padding, self.same, self.dtype, self.impl = stride, (k - 1) // 2, same, dtype, impl

  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.kernel[...]
    if self.dtype is not None:
      x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    padding = self.padding
    if self.same:  # TensorFlow's: (out - 1) * stride + k - in in all, the odd one at the bottom and right
      k, s = kernel.shape[0], self.stride
      pads = [((t := max((-(-n // s) - 1) * s + k - n, 0)) // 2, t - t // 2) for n in x.shape[1:3]]
      x, padding = jnp.pad(x, ((0, 0), *pads, (0, 0))), 0
    return depthwise_conv(x, kernel, self.stride, padding, self.impl)


class GroupedConv(nnx.Module):
  """A k x k convolution in groups of a few channels, with a bias: ``nnx.Conv``'s parameters (``kernel`` (k, k,
  Cin / G, Cout) and ``bias``) and numbers. XLA:CPU's grouped convolution is as slow as its depthwise one (its
  backward pass most of all), so on a CPU this runs as ``Cin / G`` shifted depthwise convolutions."""

  def __init__(
    self, cin: int, cout: int, k: int, stride: int = 1, *, groups: int, dtype=None, impl: str = "auto",
    rngs: nnx.Rngs,
  ):  # fmt: skip
    if impl not in IMPLS:
      raise ValueError(f"unknown depthwise impl {impl!r}; choose one of {IMPLS}")
    self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (k, k, cin // groups, cout), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((cout,)))
    self.stride, self.padding, self.dtype, self.impl = stride, (k - 1) // 2, dtype, impl

  def __call__(self, x: jax.Array) -> jax.Array:
    kernel, bias = self.kernel[...], self.bias[...]
    if self.dtype is not None:
      x, kernel, bias = x.astype(self.dtype), kernel.astype(self.dtype), bias.astype(self.dtype)
    return depthwise_conv(x, kernel, self.stride, self.padding, self.impl) + bias


def set_impl(model: nnx.Module, impl: str) -> nnx.Module:
  """Sets every DepthwiseConv and GroupedConv in ``model`` to ``impl`` (benchmarks and tests compare them)."""
  if impl not in IMPLS:
    raise ValueError(f"unknown depthwise impl {impl!r}; choose one of {IMPLS}")
  for _, m in nnx.iter_modules(model):
    if isinstance(m, DepthwiseConv | GroupedConv):
      m.impl = impl
  return model
