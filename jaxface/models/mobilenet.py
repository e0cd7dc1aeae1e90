"""torchvision's MobileNetV2 (width 1.0), exactly, in Flax NNX.

Module names follow torchvision's state dict (``features.2.conv.1.0`` ...), so
weights map by name: a ``ConvBNReLU`` is a list [conv, bn], as torchvision's
``Conv2dNormActivation`` is a Sequential. The 3x3 depthwise convs are
``depthwise.DepthwiseConv`` (shifted multiply-adds on CPU, where XLA's grouped
convolution is slow), with nnx.Conv's parameter name and shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.models.resnet import batch_norm, conv
from jaxface.xla.depthwise import DepthwiseConv

# t (expansion), c (channels), n (blocks), s (stride of the first block)
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class ConvBNReLU(nnx.List):
  def __init__(
    self, cin: int, cout: int, k: int, stride: int = 1, depthwise: bool = False, *, dtype=None, rngs: nnx.Rngs
  ):
    c = (
      DepthwiseConv(cin, k, stride, dtype=dtype, rngs=rngs)
      if depthwise
      else conv(cin, cout, k, stride, dtype=dtype, rngs=rngs)
    )
    super().__init__([c, batch_norm(cout, dtype=dtype, rngs=rngs)])

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.nn.relu6(self[1](self[0](x)))


class InvertedResidual(nnx.Module):
  def __init__(self, cin: int, cout: int, stride: int, expand: int, *, dtype=None, rngs: nnx.Rngs):
    hidden = cin * expand
    layers = [ConvBNReLU(cin, hidden, 1, dtype=dtype, rngs=rngs)] if expand != 1 else []
    layers += [
      ConvBNReLU(hidden, hidden, 3, stride, depthwise=True, dtype=dtype, rngs=rngs),
      conv(hidden, cout, 1, dtype=dtype, rngs=rngs),
      batch_norm(cout, dtype=dtype, rngs=rngs),
    ]
    self.conv = nnx.List(layers)
    self.residual = stride == 1 and cin == cout

  def __call__(self, x: jax.Array) -> jax.Array:
    y = x
    for layer in self.conv:
      y = layer(y)
    return x + y if self.residual else y


class MobileNetV2(nnx.Module):
  """Images (B, H, W, 3), ImageNet-normalised -> pooled features (B, 1280)."""

  num_features = 1280

  def __init__(self, *, dtype=None, rngs: nnx.Rngs):
    layers = [ConvBNReLU(3, 32, 3, 2, dtype=dtype, rngs=rngs)]
    cin = 32
    for t, c, n, s in _SETTINGS:
      for i in range(n):
        layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t, dtype=dtype, rngs=rngs))
        cin = c
    layers.append(ConvBNReLU(cin, self.num_features, 1, dtype=dtype, rngs=rngs))
    self.features = nnx.List(layers)

  def __call__(self, x: jax.Array) -> jax.Array:
    for layer in self.features:
      x = layer(x)
    return jnp.mean(x, axis=(1, 2))
