"""The model as training holds it: its train and eval graphs with its input transform (``ModelDef``), and its fresh
state, the backbone loaded from pretrained weights when the config asks (``init_model``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import jax
from flax import nnx

from jaxface import models
from jaxface.config import Config
from jaxface.data import augment
from jaxface.models import BACKBONES, from_config, imagenet_normalised
from jaxface.ports import backbone, released

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
    source = released.weights(cfg.arch) if cfg.pretrained == released.RELEASED_WEIGHTS else cfg.pretrained
    backbone.load_backbone(model.backbone, backbone.read_pretrained(source), source=str(source))
    logging.info("Backbone loaded from %s (heads start fresh)", source)
  return split(model, image_inputs(imagenet_normalised(cfg.arch), cfg.augment_quality))
