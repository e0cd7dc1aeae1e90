"""Adam with the configured learning-rate schedule."""

from __future__ import annotations

import jax
import optax

from jaxface.models import BACKBONES

LR_SCHEDULES = ("constant", "cosine")


def _in_backbone(params):
  """True for each parameter under the model's ``backbone`` (the pretrained torchvision network)."""
  return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[0], "key", None) == "backbone", params)


def make(
  *,
  lr: float,
  schedule: str,
  warmup_epochs: float,
  horizon_epochs: int,
  steps_per_epoch: int,
  backbone_lr_scale: float = 1.0,
) -> optax.GradientTransformation:
  """The LR is a hyperparameter in the optimizer state, for logging.

  ``horizon_epochs`` is the schedule's length: cosine reaches 0 there. It is
  fixed when a run starts, so extending or shortening a run never moves it.
  ``backbone_lr_scale`` scales the backbone's updates: Adam's update is
  invariant to the gradient's scale, so this is Adam at ``lr * scale`` for
  those parameters, on the same schedule. At 1.0 the optimizer state is
  plain Adam's (checkpoints from before this option load unchanged).
  """
  total = horizon_epochs * steps_per_epoch
  warmup = int(warmup_epochs * steps_per_epoch)
  if schedule == "constant":
    lr_fn = optax.linear_schedule(0.0, lr, warmup) if warmup else lr
  elif schedule == "cosine":
    lr_fn = optax.warmup_cosine_decay_schedule(0.0, lr, max(warmup, 1), max(total, warmup + 1), end_value=0.0)
  else:
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {LR_SCHEDULES}")
  adam = optax.inject_hyperparams(optax.adam)(learning_rate=lr_fn)
  if backbone_lr_scale == 1.0:
    return adam
  return optax.chain(adam, optax.masked(optax.scale(backbone_lr_scale), _in_backbone))


def from_config(cfg, steps_per_epoch: int) -> optax.GradientTransformation:
  """The optimizer a training config describes (its lr, lr_schedule, warmup_epochs, horizon_epochs and
  backbone_lr_scale)."""
  if cfg.backbone_lr_scale != 1.0 and cfg.arch not in BACKBONES:
    raise ValueError(f"--backbone-lr-scale applies to the pretrained backbones {sorted(BACKBONES)}, not {cfg.arch!r}")
  return make(
    lr=cfg.lr, schedule=cfg.lr_schedule, warmup_epochs=cfg.warmup_epochs, horizon_epochs=cfg.horizon_epochs,
    steps_per_epoch=steps_per_epoch, backbone_lr_scale=cfg.backbone_lr_scale,
  )  # fmt: skip


def current_lr(opt_state) -> jax.Array:
  """The heads' learning rate at this step, from the state of ``make``'s optimizer."""
  adam = opt_state if hasattr(opt_state, "hyperparams") else opt_state[0]
  return adam.hyperparams["learning_rate"]
