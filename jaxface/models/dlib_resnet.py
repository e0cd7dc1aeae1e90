"""Cydral's dlib networks (dlib-models' age predictor v1 and gender classifier v1), exactly, in Flax NNX.

Both were trained in dlib on ~110k faces, on dlib's aligned face chips
(``get_face_chip_details(landmarks, size, padding=0.2)``: the framing of
UTKFace's own crops), with input ``(RGB byte - channel mean) / 256``. The
modules take [0, 1] images and normalise them themselves.

- ``AgeNet``: a dlib ResNet for 64x64 chips: a 7x7/2 convolution, a 3x3/2
  max-pool, then five residual blocks (64; 128 and 256, each entered by a
  stride-2 block whose shortcut is a 2x2 average pool padded with zero
  channels), global average pooling (256 features) and an 81-way softmax over
  the ages 0.25, 1, ..., 80.
- ``GenderNet``: a small VGG-style network for 32x32 chips: two pairs of 3x3
  convolutions each followed by a 2x2 average pool, a 16-unit dense layer, two
  logits (female, male). Its two 0.5 multiplies are dlib's dropout at inference.

dlib's ``affine`` layers (batch norm frozen into a scale and a shift) are
``Affine``, kept trainable. Names are this port's own; ``jaxface.cydral``
maps the ONNX graphs onto them in graph order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.models import heads

MEANS = (122.781998, 117.000999, 104.297997)  # dlib's input_rgb_image default, in RGB order
AGE_VALUES = (0.25, *range(1, 81))  # what each of AgeNet's 81 classes stands for, in years


def dlib_input(x: jax.Array) -> jax.Array:
  """[0, 1] RGB images -> dlib's input units, (byte - mean) / 256."""
  return (x.astype(jnp.float32) * 255.0 - jnp.asarray(MEANS)) / 256.0


class Affine(nnx.Module):
  def __init__(self, c: int):
    self.scale = nnx.Param(jnp.ones((c,)))
    self.bias = nnx.Param(jnp.zeros((c,)))

  def __call__(self, x: jax.Array) -> jax.Array:
    return x * self.scale[...].astype(x.dtype) + self.bias[...].astype(x.dtype)


def _conv(cin: int, cout: int, k: int, stride: int, padding, *, dtype, rngs: nnx.Rngs) -> nnx.Conv:
  return nnx.Conv(cin, cout, (k, k), (stride, stride), padding=padding, dtype=dtype, rngs=rngs)


def _avg_pool_2x2(x: jax.Array) -> jax.Array:
  return nnx.avg_pool(x, (2, 2), (2, 2), padding="VALID")


class ConvAffine(nnx.Module):
  def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, padding="SAME", *, dtype=None, rngs):
    self.conv = _conv(cin, cout, k, stride, padding, dtype=dtype, rngs=rngs)
    self.affine = Affine(cout)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.affine(self.conv(x))


class Block(nnx.Module):
  """dlib's residual (``cin == cout``) or residual_down (stride 2: 3x3/2 VALID convolution; the shortcut a 2x2
  average pool, its new channels zero). Where the two differ in size, the smaller is zero-padded at the bottom and
  right, as dlib's add_prev does."""

  def __init__(self, cin: int, cout: int, *, dtype=None, rngs: nnx.Rngs):
    self.down = cin != cout
    self.conv1 = ConvAffine(
      cin, cout, 3, 2 if self.down else 1, "VALID" if self.down else "SAME", dtype=dtype, rngs=rngs
    )
    self.conv2 = ConvAffine(cout, cout, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv2(jax.nn.relu(self.conv1(x)))
    if self.down:
      x = _avg_pool_2x2(x)
      x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, y.shape[-1] - x.shape[-1])))
      h, w = max(x.shape[1], y.shape[1]), max(x.shape[2], y.shape[2])
      x, y = (jnp.pad(t, ((0, 0), (0, h - t.shape[1]), (0, w - t.shape[2]), (0, 0))) for t in (x, y))
    return jax.nn.relu(x + y)


class AgeNet(nnx.Module):
  """[0, 1] images (B, H, W, 3) -> pooled features (B, 256); ``logits`` adds the released 81-way age layer."""

  num_features = 256

  def __init__(self, *, classifier: bool = False, dtype=None, rngs: nnx.Rngs):
    self.stem = ConvAffine(3, 64, 7, 2, "VALID", dtype=dtype, rngs=rngs)
    cins = (64, 64, 128, 128, 256)
    couts = (64, 128, 128, 256, 256)
    self.blocks = nnx.List([Block(a, b, dtype=dtype, rngs=rngs) for a, b in zip(cins, couts, strict=True)])
    self.fc = nnx.Linear(256, len(AGE_VALUES), dtype=dtype, rngs=rngs) if classifier else None

  def __call__(self, x: jax.Array) -> jax.Array:
    x = jax.nn.relu(self.stem(dlib_input(x)))
    x = nnx.max_pool(x, (3, 3), (2, 2), padding="VALID")
    for block in self.blocks:
      x = block(x)
    return jnp.mean(x, axis=(1, 2))

  def logits(self, x: jax.Array) -> jax.Array:
    return self.fc(self(x))


class GenderNet(nnx.Module):
  """[0, 1] images (B, 32, 32, 3) -> its 16 hidden features; ``logits`` adds the released (female, male) layer."""

  SIZE = 32
  num_features = 16

  def __init__(self, *, classifier: bool = False, dtype=None, rngs: nnx.Rngs):
    widths = ((3, 32), (32, 32), (32, 64), (64, 64))
    self.convs = nnx.List([ConvAffine(a, b, dtype=dtype, rngs=rngs) for a, b in widths])
    self.fc = nnx.Linear(64 * (self.SIZE // 4) ** 2, self.num_features, dtype=dtype, rngs=rngs)
    self.out = nnx.Linear(self.num_features, 2, dtype=dtype, rngs=rngs) if classifier else None

  def __call__(self, x: jax.Array) -> jax.Array:
    x = dlib_input(x)
    for i, conv in enumerate(self.convs):
      x = jax.nn.relu(conv(x))
      if i % 2:
        x = _avg_pool_2x2(x)
    x = 0.5 * jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)  # dlib flattens channel-major
    return 0.5 * jax.nn.relu(self.fc(x))

  def logits(self, x: jax.Array) -> jax.Array:
    return self.out(self(x))


def gender_chip(x: jax.Array) -> jax.Array:
  """The 32x32 chip GenderNet expects, from a larger chip of the same framing (antialiased)."""
  b, h, w, c = x.shape
  if (h, w) == (GenderNet.SIZE, GenderNet.SIZE):
    return x
  return jax.image.resize(x, (b, GenderNet.SIZE, GenderNet.SIZE, c), "linear", antialias=True)


class Cydral(nnx.Module):
  """The backbone of ``--arch cydral``: both released networks without their output layers, [0, 1] images ->
  AgeNet's 256 pooled features and GenderNet's 16 hidden ones, concatenated (B, 272)."""

  num_features = AgeNet.num_features + GenderNet.num_features

  def __init__(self, *, dtype=None, rngs: nnx.Rngs):
    self.age = AgeNet(dtype=dtype, rngs=rngs)
    self.gender = GenderNet(dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.concatenate([self.age(x), self.gender(gender_chip(x))], axis=-1)


class CydralReleased(nnx.Module):
  """Both networks with their released output layers, no training: ``--arch cydral_released``.

  The age probabilities become logits over jaxface's ages 0..116 (``heads.AGES``): class k is age k, so the
  released first class (0.25 years) is read as 0, and ages above 80 get no mass. The gender logit is
  log P(female) - log P(male).
  """

  def __init__(self, *, dtype=None, rngs: nnx.Rngs):
    self.age = AgeNet(classifier=True, dtype=dtype, rngs=rngs)
    self.gender = GenderNet(classifier=True, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    age = heads.released_age_logits(self.age.logits(x))
    g = self.gender.logits(gender_chip(x)).astype(jnp.float32)
    return heads.age_outputs(age, "distribution") | {"gender_logit": g[:, 0] - g[:, 1]}
