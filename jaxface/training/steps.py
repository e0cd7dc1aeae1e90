"""The pure train and eval steps over the model's explicit state.

A model is split once (``model_def``) into a graph definition per mode (training: dropout on, batch statistics from
the batch and updated; evaluation: dropout off, running statistics) and one state: ``params`` (trained) and
``batch_stats`` (batch-norm running statistics). The steps merge, run and split inside ``jax.jit``, so the hot loop
never walks the object graph in Python.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxface.config import Config
from jaxface.training import losses
from jaxface.training.model_def import ModelDef


def init_state(params, batch_stats, tx: optax.GradientTransformation, seed: int) -> dict:
  return {
    "params": params,
    "batch_stats": batch_stats,
    "opt_state": tx.init(params),
    "step": jnp.zeros((), jnp.int32),
    "rng": jax.random.key_data(jax.random.key(seed)),
    "first_bad_step": jnp.full((), -1, jnp.int32),  # first step whose loss was not finite
  }


def make_train_step(mdef: ModelDef, tx: optax.GradientTransformation, cfg: Config):
  def train_step(state: dict, batch: dict):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
    aug_rng, drop_rng = jax.random.split(rng)
    x = mdef.inputs(batch["image"], aug_rng if cfg.augment else None)

    def loss_fn(params, batch_stats):
      # copy=True: fresh Variables at the grad trace level, so BatchNorm may update its statistics.
      model = nnx.merge(mdef.train, params, batch_stats, copy=True)
      loss, sums = losses.joint(model(x, rngs=nnx.Rngs(dropout=drop_rng)), batch, losses.Objective.of(cfg))
      _, _, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
      return loss, (sums, batch_stats)

    (loss, (sums, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state["params"], state["batch_stats"]
    )
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    bad = ~jnp.isfinite(loss)
    new = {
      "params": optax.apply_updates(state["params"], updates),
      "batch_stats": batch_stats,
      "opt_state": opt_state,
      "step": state["step"] + 1,
      "rng": state["rng"],
      "first_bad_step": jnp.where((state["first_bad_step"] < 0) & bad, state["step"], state["first_bad_step"]),
    }
    return new, sums

  return train_step


def make_eval_step(mdef: ModelDef, cfg: Config):
  """(state, padded batch with a mask) -> the metric sums of its real examples."""

  def eval_step(state: dict, batch: dict) -> dict:
    model = nnx.merge(mdef.eval, state["params"], state["batch_stats"])
    out = model(mdef.inputs(batch["image"], None))
    return losses.joint(out, batch, losses.Objective.of(cfg), mask=batch["mask"])[1]

  return eval_step
