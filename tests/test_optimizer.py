"""The optimizer: the backbone's LR scale."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import config as config_lib
from jaxface.training import model_def, optimizer


def _updates(scale: float, params, grads):
  tx = optimizer.make(
    lr=1e-3, schedule="constant", warmup_epochs=0, horizon_epochs=1, steps_per_epoch=10, backbone_lr_scale=scale
  )
  updates, state = tx.update(grads, tx.init(params), params)
  return updates, state


def test_backbone_lr_scale_scales_only_the_backbone():
  rng = np.random.default_rng(0)
  params = {
    "backbone": {"features": {"w": jnp.asarray(rng.normal(size=(3, 4)))}},
    "age_head": {"w": jnp.asarray(rng.normal(size=(4,)))},
  }
  grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
  plain, plain_state = _updates(1.0, params, grads)
  scaled, scaled_state = _updates(0.1, params, grads)
  np.testing.assert_allclose(scaled["backbone"]["features"]["w"], 0.1 * plain["backbone"]["features"]["w"], rtol=1e-6)
  np.testing.assert_allclose(scaled["age_head"]["w"], plain["age_head"]["w"], rtol=1e-6)
  assert not np.allclose(scaled["backbone"]["features"]["w"], plain["backbone"]["features"]["w"])
  # the logged LR is the heads' either way
  assert float(optimizer.current_lr(plain_state)) == float(optimizer.current_lr(scaled_state)) == pytest.approx(1e-3)
  assert hasattr(plain_state, "hyperparams")  # at 1.0 plain Adam's state: older checkpoints restore into it


def test_backbone_lr_scale_refused_without_a_backbone():
  with pytest.raises(ValueError, match="backbone-lr-scale"):
    optimizer.from_config(config_lib.make("custom", backbone_lr_scale=0.1), 10)


def test_backbone_lr_scale_masks_the_real_models_backbone():
  cfg = config_lib.make("mobilenet_v2", image_size=32, backbone_lr_scale=0.5)
  _, params, _ = model_def.init_model(cfg)
  mask = optimizer._in_backbone(params)
  flags = {jax.tree_util.keystr(p): m for p, m in jax.tree_util.tree_leaves_with_path(mask)}
  assert any(flags.values()) and not all(flags.values())
  assert all(m == k.startswith("['backbone']") for k, m in flags.items())
