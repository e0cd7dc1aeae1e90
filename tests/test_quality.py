"""Photo-quality augmentation: each degradation does what it says, and p = 0 changes nothing."""

import io

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxface.data import augment, quality


def face(size=64) -> np.ndarray:
  from skimage import data

  img = Image.fromarray(data.astronaut()).crop((150, 40, 330, 220)).resize((size, size))
  return np.asarray(img, np.float32)[None] / 255


def test_jpeg_like_is_close_to_libjpeg_at_the_same_quality():
  """The DCT quantisation (per RGB channel, luminance table) against Pillow's JPEG (YCbCr, 4:2:0) at quality 30:
  both lose about as much, and the high quality loses far less."""
  x = face()
  buf = io.BytesIO()
  Image.fromarray((x[0] * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=30)
  pil = np.asarray(Image.open(buf), np.float32) / 255
  ours = np.asarray(quality.jpeg_like(jnp.asarray(x), jnp.array([30.0])))[0]
  fine = np.asarray(quality.jpeg_like(jnp.asarray(x), jnp.array([95.0])))[0]
  err_pil, err_ours, err_fine = (np.abs(v - x[0]).mean() for v in (pil, ours, fine))
  assert 0.4 * err_pil < err_ours < 2.5 * err_pil
  assert err_fine < 0.4 * err_ours


def test_blur_keeps_a_flat_image_and_smooths_an_edge():
  flat = jnp.full((1, 16, 16, 3), 0.3)
  np.testing.assert_allclose(quality.blur(flat, jnp.array([1.0])), 0.3, atol=1e-6)
  edge = jnp.zeros((1, 16, 16, 3)).at[:, :, 8:].set(1.0)
  out = np.asarray(quality.blur(edge, jnp.array([1.0])))[0, 0, :, 0]
  assert 0.05 < out[7] < 0.5 < out[8] < 0.95 and abs(out[0]) < 1e-6 and abs(out[-1] - 1) < 1e-6


def test_degrade_with_p_0_is_the_identity_and_with_p_1_changes_every_image():
  x = jnp.asarray(np.repeat(face(), 4, axis=0))
  np.testing.assert_array_equal(quality.degrade(jax.random.key(0), x, 0.0), x)
  y = np.asarray(quality.degrade(jax.random.key(0), x, 1.0))
  assert y.min() >= 0 and y.max() <= 1
  assert all(np.abs(y[i] - np.asarray(x[i])).mean() > 0.01 for i in range(4))


def test_preprocess_applies_quality_only_when_asked():
  x = jnp.asarray((face() * 255).astype(np.uint8))
  key = jax.random.key(1)
  plain = augment.preprocess(x, imagenet_norm=False, rng=key)
  np.testing.assert_array_equal(plain, augment.preprocess(x, imagenet_norm=False, rng=key, quality=0.0))
  assert not np.allclose(plain, augment.preprocess(x, imagenet_norm=False, rng=key, quality=1.0))
