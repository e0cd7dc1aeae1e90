"""The model as explicit state, and the pure train and eval steps over it.

A model is split once into a graph definition per mode (training: dropout on,
batch statistics from the batch and updated; evaluation: dropout off, running
statistics) and one state: ``params`` (trained) and ``rest`` (batch-norm
statistics). The steps merge, run and split inside ``jax.jit``, so the hot
loop never walks the object graph in Python.
"""

from __future__ import annotations

import dataclasses
import logging

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxface import losses, weights
from jaxface.config import Config
from jaxface.data import augment
from jaxface.models import get_model, imagenet_normalised


@dataclasses.dataclass(frozen=True)
class ModelDef:
  train: nnx.GraphDef
  eval: nnx.GraphDef
  imagenet_norm: bool


def init_model(cfg: Config):
  """(ModelDef, params, rest) of a fresh model, its backbone loaded from ``cfg.pretrained`` if set."""
  dtype = jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32
  model = get_model(
    cfg.arch,
    image_size=cfg.image_size,
    seed=cfg.seed,
    dtype=dtype,
    hidden=cfg.hidden,
    dropout=cfg.dropout,
    widths=cfg.widths,
  )
  if cfg.freeze_until and cfg.arch != "mobilenet_v2":
    raise ValueError(f"freeze_until (cached frozen layers) is implemented for mobilenet_v2, not {cfg.arch!r}")
  if cfg.freeze_until and not cfg.pretrained:
    logging.warning("freeze_until=%d without --pretrained: the frozen layers keep their random init", cfg.freeze_until)
  if cfg.pretrained:
    if not hasattr(model, "backbone"):
      raise ValueError(f"--pretrained applies to the torchvision backbones, not to arch {cfg.arch!r}")
    weights.load_backbone(model.backbone, weights.read_pretrained(cfg.pretrained), source=cfg.pretrained)
    logging.info("Backbone loaded from %s (heads start fresh)", cfg.pretrained)
  train_g, params, rest = nnx.split(nnx.view(model, deterministic=False, use_running_average=False), nnx.Param, ...)
  eval_g, _, _ = nnx.split(nnx.view(model, deterministic=True, use_running_average=True), nnx.Param, ...)
  return ModelDef(train_g, eval_g, imagenet_normalised(cfg.arch)), params, rest


def make_optimizer(cfg: Config, steps_per_epoch: int) -> optax.GradientTransformation:
  """Adam with the configured schedule; the LR is a hyperparameter in the state, for logging."""
  total = cfg.epochs * steps_per_epoch
  warmup = int(cfg.warmup_epochs * steps_per_epoch)
  if cfg.lr_schedule == "constant":
    lr = optax.linear_schedule(0.0, cfg.lr, warmup) if warmup else cfg.lr
  elif cfg.lr_schedule == "cosine":
    lr = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, max(warmup, 1), max(total, warmup + 1), end_value=0.0)
  else:
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}")
  return optax.inject_hyperparams(optax.adam)(learning_rate=lr)


def init_state(params, rest, tx: optax.GradientTransformation, seed: int) -> dict:
  return {
    "params": params,
    "rest": rest,
    "opt_state": tx.init(params),
    "step": jnp.zeros((), jnp.int32),
    "rng": jax.random.key_data(jax.random.key(seed)),
    "first_bad_step": jnp.full((), -1, jnp.int32),  # first step whose loss was not finite
  }


def make_train_step(mdef: ModelDef, tx: optax.GradientTransformation, cfg: Config):
  def train_step(state: dict, batch: dict):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
    aug_rng, drop_rng = jax.random.split(rng)
    if cfg.freeze_until:  # cached prefix activations (B, 2 views, h, w, c): augmentation = pick a view
      feats = batch["feats"].astype(jnp.float32)
      mirror = jax.random.bernoulli(aug_rng, 0.5, (feats.shape[0], 1, 1, 1)) if cfg.augment else False
      x = jnp.where(mirror, feats[:, 1], feats[:, 0])
    else:
      x = augment.preprocess(batch["image"], imagenet_norm=mdef.imagenet_norm, rng=aug_rng if cfg.augment else None)

    def loss_fn(params, rest):
      # copy=True: fresh Variables at the grad trace level, so BatchNorm may update its statistics.
      model = nnx.merge(mdef.train, params, rest, copy=True)
      out = model(x, rngs=nnx.Rngs(dropout=drop_rng), **({"start": cfg.freeze_until} if cfg.freeze_until else {}))
      loss, sums = losses.joint(out, batch, cfg.age_loss_weight, cfg.gender_loss_weight)
      _, _, rest = nnx.split(model, nnx.Param, ...)
      return loss, (sums, rest)

    (loss, (sums, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], state["rest"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    bad = ~jnp.isfinite(loss)
    new = {
      "params": optax.apply_updates(state["params"], updates),
      "rest": rest,
      "opt_state": opt_state,
      "step": state["step"] + 1,
      "rng": state["rng"],
      "first_bad_step": jnp.where((state["first_bad_step"] < 0) & bad, state["step"], state["first_bad_step"]),
    }
    return new, sums

  return train_step


def make_predict(mdef: ModelDef):
  """(params, rest, uint8 images) -> {'age', 'gender_logit'} in evaluation mode."""

  def predict(params, rest, images):
    model = nnx.merge(mdef.eval, params, rest)
    return model(augment.preprocess(images, imagenet_norm=mdef.imagenet_norm))

  return predict


def make_prefix(mdef: ModelDef, stop: int):
  """(params, rest, uint8 images) -> activations after backbone layer ``stop - 1``, evaluation mode."""

  def prefix(params, rest, images):
    model = nnx.merge(mdef.eval, params, rest)
    return model.backbone(augment.preprocess(images, imagenet_norm=mdef.imagenet_norm), stop=stop)

  return prefix


def make_eval_step(mdef: ModelDef, cfg: Config):
  predict = make_predict(mdef)

  def eval_step(state: dict, batch: dict) -> dict:
    if cfg.freeze_until:  # cached prefix activations, first view (the image itself)
      model = nnx.merge(mdef.eval, state["params"], state["rest"])
      out = model(batch["feats"][:, 0].astype(jnp.float32), start=cfg.freeze_until)
    else:
      out = predict(state["params"], state["rest"], batch["image"])
    _, sums = losses.joint(out, batch, cfg.age_loss_weight, cfg.gender_loss_weight, mask=batch["mask"])
    return sums

  return eval_step
