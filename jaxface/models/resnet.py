"""torchvision's ResNet-50 (v1.5), exactly, in Flax NNX.

Same layer names as torchvision's state dict (``layer1.0.conv1`` ...), so weights
map by name. v1.5 puts the stride on the 3x3 conv; padding is torchvision's
explicit symmetric padding (not "SAME", which pads stride-2 convs
asymmetrically); batch-norm eps 1e-5, momentum 0.1 (Flax 0.9).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.xla import conv as conv_lib

BN_MOMENTUM = 0.9  # torch momentum 0.1
BN_EPS = 1e-5


def conv(cin: int, cout: int, k: int, stride: int = 1, *, dtype=None, rngs: nnx.Rngs) -> nnx.Conv:
  p = (k - 1) // 2
  return nnx.Conv(
      cin, cout, (k, k), (stride, stride), padding=((p, p), (p, p)), use_bias=False,
      kernel_init=nnx.initializers.variance_scaling(2.0, "fan_out", "normal"), dtype=dtype, rngs=rngs,
      conv_general_dilated=conv_lib.conv_general_dilated,
  )  # fmt: skip


def batch_norm(c: int, *, dtype=None, rngs: nnx.Rngs) -> nnx.BatchNorm:
  return nnx.BatchNorm(c, momentum=BN_MOMENTUM, epsilon=BN_EPS, use_running_average=True, dtype=dtype, rngs=rngs)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  return nnx.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))  # pads with -inf, as torch does


class Bottleneck(nnx.Module):
  expansion = 4

  def __init__(self, cin: int, width: int, stride: int, *, dtype=None, rngs: nnx.Rngs):
    cout = width * self.expansion
    self.conv1 = conv(cin, width, 1, dtype=dtype, rngs=rngs)
    self.bn1 = batch_norm(width, dtype=dtype, rngs=rngs)
    self.conv2 = conv(width, width, 3, stride, dtype=dtype, rngs=rngs)
    self.bn2 = batch_norm(width, dtype=dtype, rngs=rngs)
    self.conv3 = conv(width, cout, 1, dtype=dtype, rngs=rngs)
    self.bn3 = batch_norm(cout, dtype=dtype, rngs=rngs)
    project = stride != 1 or cin != cout  # torchvision's downsample: 1x1 conv + BN on the shortcut
    self.downsample = nnx.List(
      [conv(cin, cout, 1, stride, dtype=dtype, rngs=rngs), batch_norm(cout, dtype=dtype, rngs=rngs)] if project else []
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    y = jax.nn.relu(self.bn1(self.conv1(x)))
    y = jax.nn.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    if len(self.downsample):
      x = self.downsample[1](self.downsample[0](x))
    return jax.nn.relu(x + y)


class ResNet50(nnx.Module):
  """Images (B, H, W, 3), ImageNet-normalised -> pooled features (B, 2048)."""

  num_features = 2048

  def __init__(self, *, dtype=None, rngs: nnx.Rngs):
    self.conv1 = conv(3, 64, 7, 2, dtype=dtype, rngs=rngs)
    self.bn1 = batch_norm(64, dtype=dtype, rngs=rngs)
    cin = 64
    for i, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=1):
      layer = []
      for b in range(blocks):
        layer.append(Bottleneck(cin, width, stride if b == 0 else 1, dtype=dtype, rngs=rngs))
        cin = width * Bottleneck.expansion
      setattr(self, f"layer{i}", nnx.List(layer))

  def __call__(self, x: jax.Array) -> jax.Array:
    x = max_pool_3x3_s2(jax.nn.relu(self.bn1(self.conv1(x))))
    for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
      for block in layer:
        x = block(x)
    return jnp.mean(x, axis=(1, 2))
