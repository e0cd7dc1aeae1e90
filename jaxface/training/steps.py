"""The model as explicit state, and the pure train and eval steps over it.

A model is split once into a graph definition per mode (training: dropout on,
batch statistics from the batch and updated; evaluation: dropout off, running
statistics) and one state: ``params`` (trained) and ``batch_stats`` (batch-norm
running statistics). The steps merge, run and split inside ``jax.jit``, so the
hot loop never walks the object graph in Python.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxface import models, released, weights
from jaxface.config import Config
from jaxface.data import augment
from jaxface.models import BACKBONES, TORCHVISION, from_config, imagenet_normalised
from jaxface.training import losses

# (batch["image"], augmentation key or None) -> the model's input.
Inputs = Callable[[jax.Array, jax.Array | None], jax.Array]


@dataclasses.dataclass(frozen=True)
class ModelDef:
  train: nnx.GraphDef
  eval: nnx.GraphDef
  inputs: Inputs


def image_inputs(imagenet_norm: bool, quality: float = 0.0) -> Inputs:
  """uint8 images -> rescaled (augmented when given a key), normalised for ImageNet backbones."""
  return lambda images, rng: augment.preprocess(images, imagenet_norm=imagenet_norm, rng=rng, quality=quality)


def split(model: nnx.Module, inputs: Inputs) -> tuple[ModelDef, nnx.State, nnx.State]:
  """(ModelDef, params, batch_stats) of a live model."""
  train_g, params, batch_stats = nnx.split(models.mode(model, train=True), nnx.Param, nnx.BatchStat)
  eval_g, _, _ = nnx.split(models.mode(model, train=False), nnx.Param, nnx.BatchStat)
  return ModelDef(train_g, eval_g, inputs), params, batch_stats


def init_model(cfg: Config) -> tuple[ModelDef, nnx.State, nnx.State]:
  """(ModelDef, params, batch_stats) of a fresh model, its backbone loaded from ``cfg.pretrained`` if set."""
  model = from_config(cfg)
  if cfg.pretrained:
    if not hasattr(model, "backbone"):
      raise ValueError(
        f"--pretrained applies to the pretrained backbones {sorted(BACKBONES)}, not to arch {cfg.arch!r}"
      )
    source = released_weights(cfg.arch) if cfg.pretrained == RELEASED_WEIGHTS else cfg.pretrained
    weights.load_backbone(model.backbone, weights.read_pretrained(source), source=str(source))
    logging.info("Backbone loaded from %s (heads start fresh)", source)
  return split(model, image_inputs(imagenet_normalised(cfg.arch), cfg.augment_quality))


RELEASED_WEIGHTS = "released"  # --pretrained released: the arch's published weights, fetched (digest-checked) once


def released_weights(arch: str):
  """The published weights of ``arch``'s backbone: downloaded and checked on first use, then cached."""
  if arch in TORCHVISION:
    return weights.download_torchvision(arch)
  return released.cached_backbone(arch)


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
