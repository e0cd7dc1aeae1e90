"""Convolutions with a small output that XLA:CPU trains fast: the input's patches times the kernel.

XLA:CPU runs jaxface's convolutions through Eigen (``xla_options``). Where the
output is a few pixels on a side (ResNet-50's last two stages at the cpu
preset's 64 px are 4x4 and 2x2), Eigen's passes are very slow, the kernel's
gradient above all: a handful of such convolutions took most of ResNet-50's
train step (benchmarks/results/xla_profile_cpu.json). The same convolution as
its k*k shifted views of the padded input, side by side on the channel axis,
times the kernel as a (k*k*in, out) matrix, is one dot forward and backward.

``conv_general_dilated`` has ``lax.conv_general_dilated``'s signature, so an
``nnx.Conv`` takes it as its ``conv_general_dilated`` and keeps its parameters
(checkpoints and converted weights load unchanged). The patches run on CPU for
an NHWC/HWIO convolution without dilation or groups whose output sides are at
most ``SMALL``; everything else, and every other platform (chosen by
``lax.platform_dependent`` when the function is lowered), is XLA's convolution.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

SMALL = 4  # output sides up to this take the patches on CPU: ResNet-50 at 64 px trained fastest at 4 (of 2, 4 and 8)


def patches(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], pads, precision=None) -> jax.Array:
  """x (B, H, W, C) NHWC, kernel (kh, kw, C, O) HWIO, pads ((top, bottom), (left, right)): the convolution."""
  kh, kw, cin, cout = kernel.shape
  sh, sw = strides
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  b, hp, wp, _ = xp.shape
  oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
  taps = [
    lax.slice(xp, (0, i, j, 0), (b, i + sh * (oh - 1) + 1, j + sw * (ow - 1) + 1, cin), (1, sh, sw, 1))
    for i in range(kh)
    for j in range(kw)
  ]
  cols = taps[0] if len(taps) == 1 else jnp.concatenate(taps, axis=-1)  # (kh, kw, C) order: the kernel's rows
  return jnp.dot(cols, kernel.reshape(kh * kw * cin, cout), precision=precision)


def _explicit_pads(padding, in_hw, k_hw, strides):
  if isinstance(padding, str):
    return tuple(lax.padtype_to_pads(in_hw, k_hw, strides, padding))
  return tuple(tuple(p) for p in padding)


def conv_general_dilated(
  lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
  feature_group_count=1, precision=None, **kw,
):  # fmt: skip
  """``lax.conv_general_dilated``, with a small NHWC output computed as patches times the kernel on CPU."""

  def xla(x, w):
    return lax.conv_general_dilated(
      x, w, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
      precision=precision, **kw,
    )  # fmt: skip

  nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  plain = (
    lhs.ndim == 4 and feature_group_count == 1 and not any(v is not None for v in kw.values())
    and all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1)))
    and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == nhwc
  )  # fmt: skip
  if not plain:
    return xla(lhs, rhs)
  strides = tuple(window_strides)
  pads = _explicit_pads(padding, lhs.shape[1:3], rhs.shape[:2], strides)
  sizes = zip(lhs.shape[1:3], pads, rhs.shape[:2], strides, strict=True)
  out = [(n + lo + hi - k) // s + 1 for n, (lo, hi), k, s in sizes]
  if max(out) > SMALL:
    return xla(lhs, rhs)
  return lax.platform_dependent(lhs, rhs, cpu=lambda x, w: patches(x, w, strides, pads, precision), default=xla)
