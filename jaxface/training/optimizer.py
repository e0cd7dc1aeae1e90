"""Adam with the configured learning-rate schedule."""

from __future__ import annotations

import optax

LR_SCHEDULES = ("constant", "cosine")


def make(
  *, lr: float, schedule: str, warmup_epochs: float, horizon_epochs: int, steps_per_epoch: int
) -> optax.GradientTransformation:
  """The LR is a hyperparameter in the optimizer state, for logging.

  ``horizon_epochs`` is the schedule's length: cosine reaches 0 there. It is
  fixed when a run starts, so extending or shortening a run never moves it.
  """
  total = horizon_epochs * steps_per_epoch
  warmup = int(warmup_epochs * steps_per_epoch)
  if schedule == "constant":
    lr_fn = optax.linear_schedule(0.0, lr, warmup) if warmup else lr
  elif schedule == "cosine":
    lr_fn = optax.warmup_cosine_decay_schedule(0.0, lr, max(warmup, 1), max(total, warmup + 1), end_value=0.0)
  else:
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {LR_SCHEDULES}")
  return optax.inject_hyperparams(optax.adam)(learning_rate=lr_fn)
