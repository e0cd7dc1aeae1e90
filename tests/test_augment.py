import jax
import numpy as np

from jaxface.data import augment


def test_rescale_and_normalise():
  x = np.array([[[[0, 255, 128]]]], np.uint8)
  np.testing.assert_allclose(augment.rescale(x), [[[[0.0, 1.0, 128 / 255]]]], rtol=1e-6)
  n = augment.rescale(x, imagenet_norm=True)
  np.testing.assert_allclose(n[0, 0, 0, 0], (0 - 0.485) / 0.229, rtol=1e-5)


def test_augment_identity_settings_only_flip():
  x = np.random.default_rng(0).random((16, 8, 8, 3)).astype(np.float32)
  y = np.asarray(augment.augment(jax.random.key(0), x, max_shift=0, brightness=0, contrast=0))
  flipped = np.all(np.abs(y - x[:, :, ::-1]) < 1e-6, axis=(1, 2, 3))
  same = np.all(np.abs(y - x) < 1e-6, axis=(1, 2, 3))
  assert np.all(flipped | same) and flipped.any() and same.any()


def test_augment_range_shape_and_randomness():
  x = np.random.default_rng(0).random((8, 32, 32, 3)).astype(np.float32)
  f = jax.jit(augment.augment)
  a, b = f(jax.random.key(0), x), f(jax.random.key(1), x)
  assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(f(jax.random.key(0), x), a)  # same key, same result
