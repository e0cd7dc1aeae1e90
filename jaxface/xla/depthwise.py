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
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

IMPLS = ("auto", "grouped", "shifted")


def grouped(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
  """XLA's grouped convolution. x (B, H, W, C), kernel (k, k, 1, C)."""
  return lax.conv_general_dilated(
    x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
    dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1],
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


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: int, impl: str = "auto") -> jax.Array:
  if impl == "grouped":
    return grouped(x, kernel, stride, padding)
  if impl == "shifted":
    return shifted(x, kernel, stride, padding)
  if impl != "auto":
    raise ValueError(f"unknown depthwise impl {impl!r}; choose one of {IMPLS}")
  return lax.platform_dependent(
    x, kernel, cpu=lambda x, w: shifted(x, w, stride, padding), default=lambda x, w: grouped(x, w, stride, padding)
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


def set_impl(model: nnx.Module, impl: str) -> nnx.Module:
  """Sets every DepthwiseConv in ``model`` to ``impl`` (benchmarks and tests compare them)."""
  if impl not in IMPLS:
    raise ValueError(f"unknown depthwise impl {impl!r}; choose one of {IMPLS}")
  for _, m in nnx.iter_modules(model):
    if isinstance(m, DepthwiseConv):
      m.impl = impl
  return model
