"""HSE FaceRes (A. Savchenko), exactly, in Flax NNX: a MobileNet-v1 trained on VGGFace2 identities, then for age and
gender on IMDB-WIKI.

As ``@vladmandic/human`` 3.3.6 ships it (a TF.js graph, batch norm already
folded): a 3x3/2 convolution, 13 depthwise-separable blocks (3x3 depthwise,
then its batch norm as a scale and a shift; 1x1 pointwise with the batch norm
folded into kernel and bias), every activation ReLU6, TensorFlow's "SAME"
padding; global average pooling (the 1024-d descriptor), ``feats`` (256, ReLU),
then ``age_pred`` (softmax over ages 0..99) and ``gender_pred`` (sigmoid:
P(male)). Input: pixels 0..255 at 224x224; the modules take [0, 1] RGB images
and scale them. ``human`` feeds RGB, but the network reads faces better in BGR
order (OpenCV's, which its training presumably used; zero-shot age and gender
in each order: experiments/results/faceres_input.json), so the port flips the
channels unless made with ``bgr=False``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.models import heads
from jaxface.models.dlib_resnet import Affine
from jaxface.xla.depthwise import DepthwiseConv

# (output channels, stride) of the 13 depthwise-separable blocks: MobileNet-v1 at width 1.0
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *((512, 1),) * 5, (1024, 2), (1024, 1))
SIZE = 224  # the released model's input


class Separable(nnx.Module):
  def __init__(self, cin: int, cout: int, stride: int, *, dtype=None, rngs: nnx.Rngs):
    self.dw = DepthwiseConv(cin, 3, stride, same=True, dtype=dtype, rngs=rngs)
    self.dw_bn = Affine(cin)
    self.pw = nnx.Conv(cin, cout, (1, 1), dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.nn.relu6(self.pw(jax.nn.relu6(self.dw_bn(self.dw(x)))))


class FaceRes(nnx.Module):
  """[0, 1] images (B, H, W, 3) -> ``feats``, the 256 features its age and gender layers read (B, 256).

  ``descriptor`` gives the 1024-d pooled features (the face descriptor)."""

  num_features = 256

  def __init__(self, *, bgr: bool = True, dtype=None, rngs: nnx.Rngs):
    self.bgr = bgr
    self.conv1 = nnx.Conv(3, 32, (3, 3), (2, 2), padding="SAME", dtype=dtype, rngs=rngs)
    cins = (32, *(c for c, _ in BLOCKS[:-1]))
    self.blocks = nnx.List(
      [Separable(cin, c, s, dtype=dtype, rngs=rngs) for cin, (c, s) in zip(cins, BLOCKS, strict=True)]
    )
    self.feats = nnx.Linear(1024, self.num_features, dtype=dtype, rngs=rngs)

  def descriptor(self, x: jax.Array) -> jax.Array:
    x = x[..., ::-1] if self.bgr else x
    x = jax.nn.relu6(self.conv1(x.astype(jnp.float32) * 255.0))
    for block in self.blocks:
      x = block(x)
    return jnp.mean(x, axis=(1, 2))

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.nn.relu(self.feats(self.descriptor(x)))


class FaceResReleased(nnx.Module):
  """FaceRes with its released heads, no training: ``--arch faceres_released``.

  Its age softmax (ages 0..99) becomes logits over jaxface's ages 0..116 (none above 99); the gender logit is
  minus its P(male) logit.
  """

  def __init__(self, *, bgr: bool = True, dtype=None, rngs: nnx.Rngs):
    self.net = FaceRes(bgr=bgr, dtype=dtype, rngs=rngs)
    self.age_pred = nnx.Linear(FaceRes.num_features, 100, dtype=dtype, rngs=rngs)
    self.gender_pred = nnx.Linear(FaceRes.num_features, 1, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    f = self.net(x)
    age = heads.released_age_logits(self.age_pred(f))
    return heads.age_outputs(age, "distribution") | {"gender_logit": -self.gender_pred(f)[:, 0].astype(jnp.float32)}
