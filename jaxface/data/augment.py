"""On-device preprocessing: rescaling, normalisation and training augmentation.

All functions take a batch of uint8 or float images (B, H, W, 3) and are
meant to run inside the jitted step, with static shapes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.data.quality import degrade

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def rescale(images: jax.Array, imagenet_norm: bool = False) -> jax.Array:
  """uint8 pixels to float32 in [0, 1]; then ImageNet mean/std when ``imagenet_norm``."""
  x = images.astype(jnp.float32) / 255.0
  return normalize(x) if imagenet_norm else x


def normalize(x: jax.Array) -> jax.Array:
  """[0, 1] images to ImageNet mean/std units, as torchvision's pretrained models expect."""
  return (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)


def preprocess(
  images: jax.Array, *, imagenet_norm: bool, rng: jax.Array | None = None, quality: float = 0.0
) -> jax.Array:
  """The model's input: rescaled, augmented when ``rng`` is given (training; photo-quality degradations each with
  probability ``quality``, ``data.quality``), then normalised."""
  x = rescale(images)
  if rng is not None:
    geo_rng, quality_rng = jax.random.split(rng) if quality else (rng, None)
    x = augment(geo_rng, x)
    if quality:
      x = degrade(quality_rng, x, quality)
  return normalize(x) if imagenet_norm else x


def augment(
  rng: jax.Array,
  images: jax.Array,
  *,
  max_shift: float = 0.1,
  brightness: float = 0.1,
  contrast: float = 0.2,
) -> jax.Array:
  """Random horizontal flip, translation and brightness/contrast jitter of [0, 1] images.

  Translation shifts by up to ``max_shift`` of the side, filling with the edge
  pixels (as a random crop of an edge-padded image does). Output stays in [0, 1].
  """
  b, h, w, _ = images.shape
  k_flip, k_dy, k_dx, k_bright, k_contrast = jax.random.split(rng, 5)
  flip = jax.random.bernoulli(k_flip, 0.5, (b, 1, 1, 1))
  x = jnp.where(flip, images[:, :, ::-1, :], images)
  ph, pw = int(round(max_shift * h)), int(round(max_shift * w))
  if ph or pw:
    padded = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="edge")
    dy = jax.random.randint(k_dy, (b,), 0, 2 * ph + 1)
    dx = jax.random.randint(k_dx, (b,), 0, 2 * pw + 1)
    crop = lambda img, y0, x0: jax.lax.dynamic_slice(img, (y0, x0, 0), (h, w, 3))
    x = jax.vmap(crop)(padded, dy, dx)
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  c = jax.random.uniform(k_contrast, (b, 1, 1, 1), minval=1 - contrast, maxval=1 + contrast)
  d = jax.random.uniform(k_bright, (b, 1, 1, 1), minval=-brightness, maxval=brightness)
  return jnp.clip((x - mean) * c + mean + d, 0.0, 1.0)
