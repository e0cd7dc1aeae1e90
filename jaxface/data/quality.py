"""Photo-quality augmentation, on the device: what users' photos do to faces that UTKFace's rarely show.

Each image gets each degradation with probability ``p`` (independently):
grayscale; a Gaussian blur (sigma 0.4-1.4 px at the training size); Gaussian
noise (std 0.01-0.05); JPEG-like compression (8x8 DCT blocks quantised with
the JPEG luminance table at quality 15-60, on each RGB channel); a colour cast
(each channel's gain 0.85-1.15); sepia toning; faded contrast (0.45-0.85 of it
kept, lifted toward a paper white). Static shapes throughout: every degradation
is computed for every image and selected per image, so the step compiles once.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

# The JPEG standard's luminance quantisation table (quality 50).
_JPEG_LUMA = np.array(
  [
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
  ], np.float32,
)  # fmt: skip


# The usual sepia tone matrix (rows: output R, G, B from input R, G, B).
SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)


def _dct_matrix(n: int = 8) -> np.ndarray:
  k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
  m = np.cos((2 * i + 1) * k * math.pi / (2 * n)) * math.sqrt(2 / n)
  m[0] /= math.sqrt(2)
  return m.astype(np.float32)  # orthonormal: m @ m.T = I


def jpeg_like(x: jax.Array, quality: jax.Array) -> jax.Array:
  """[0, 1] images (B, H, W, C), H and W multiples of 8, through 8x8 DCT quantisation at ``quality`` (B,)."""
  b, h, w, c = x.shape
  d = jnp.asarray(_dct_matrix())
  q = jnp.where(quality < 50, 5000 / quality, 200 - 2 * quality)[:, None, None] / 100  # libjpeg's scaling
  table = jnp.maximum(jnp.floor(_JPEG_LUMA[None] * q + 0.5), 1.0)  # (B, 8, 8)
  blocks = (x * 255 - 128).reshape(b, h // 8, 8, w // 8, 8, c).transpose(0, 1, 3, 5, 2, 4)  # (B, h8, w8, C, 8, 8)
  coef = d @ blocks @ d.T
  t = table[:, None, None, None]
  coef = jnp.round(coef / t) * t
  out = (d.T @ coef @ d).transpose(0, 1, 4, 2, 5, 3).reshape(b, h, w, c)
  return jnp.clip((out + 128) / 255, 0.0, 1.0)


def blur(x: jax.Array, sigma: jax.Array) -> jax.Array:
  """A separable Gaussian blur of each image with its own ``sigma`` (B,), 7 taps, edges repeated."""
  taps = jnp.arange(-3, 4, dtype=jnp.float32)
  k = jnp.exp(-0.5 * (taps[None] / sigma[:, None]) ** 2)
  k = k / k.sum(-1, keepdims=True)  # (B, 7)
  p = jnp.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="edge")
  h, w = x.shape[1:3]
  rows = sum(k[:, i, None, None, None] * p[:, i : i + h, :, :] for i in range(7))
  return sum(k[:, i, None, None, None] * rows[:, :, i : i + w, :] for i in range(7))


def degrade(rng: jax.Array, x: jax.Array, p: float) -> jax.Array:
  """Each degradation with probability ``p`` per image, in a fixed order; [0, 1] in and out."""
  b = x.shape[0]
  keys = jax.random.split(rng, 10)
  on = [jax.random.bernoulli(keys[i], p, (b, 1, 1, 1)) for i in range(5)]
  u = lambda k, lo, hi: jax.random.uniform(k, (b,), minval=lo, maxval=hi)  # noqa: E731
  gray = jnp.broadcast_to((x * jnp.asarray([0.299, 0.587, 0.114])).sum(-1, keepdims=True), x.shape)
  x = jnp.where(on[0], gray, x)
  gain = jax.random.uniform(keys[5], (b, 1, 1, 3), minval=0.85, maxval=1.15)
  x = jnp.where(on[1], jnp.clip(x * gain, 0.0, 1.0), x)
  x = jnp.where(on[2], blur(x, u(keys[6], 0.4, 1.4)), x)
  noise = jax.random.normal(keys[7], x.shape) * u(keys[8], 0.01, 0.05)[:, None, None, None]
  x = jnp.where(on[3], jnp.clip(x + noise, 0.0, 1.0), x)
  if not (x.shape[1] % 8 or x.shape[2] % 8):  # JPEG's blocks need sides in multiples of 8
    x = jnp.where(on[4], jpeg_like(x, u(keys[9], 15.0, 60.0)), x)
  return _aged(jax.random.fold_in(rng, 1), x, p)  # its own keys: the five above draw as they always have


def _aged(rng: jax.Array, x: jax.Array, p: float) -> jax.Array:
  """What old prints and scans add: sepia toning, and faded contrast lifted toward a paper white."""
  b = x.shape[0]
  keys = jax.random.split(rng, 4)
  on = [jax.random.bernoulli(keys[i], p, (b, 1, 1, 1)) for i in range(2)]
  x = jnp.where(on[0], jnp.clip(x @ jnp.asarray(SEPIA).T, 0.0, 1.0), x)
  keep = jax.random.uniform(keys[2], (b, 1, 1, 1), minval=0.45, maxval=0.85)  # the contrast that survives
  lift = jax.random.uniform(keys[3], (b, 1, 1, 1), minval=0.0, maxval=0.2)
  return jnp.where(on[1], jnp.clip(x * keep + (1 - keep) * (0.5 + lift), 0.0, 1.0), x)
