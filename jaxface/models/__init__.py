"""Models: the trainable archs and the released networks, by name (``get_model(arch, ...)``)."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxface.models.custom import CustomCNN
from jaxface.models.dlib_resnet import Cydral, CydralReleased
from jaxface.models.faceres import FaceRes, FaceResReleased
from jaxface.models.heads import AGE_HEADS, PretrainedNet
from jaxface.models.mobilefacenet import MobileFaceNet
from jaxface.models.mobilenet import MobileNetV2
from jaxface.models.resnet import ResNet50

__all__ = [
  "AGE_HEADS",
  "ARCHS",
  "BACKBONES",
  "DTYPES",
  "CustomCNN",
  "Cydral",
  "CydralReleased",
  "FaceRes",
  "FaceResReleased",
  "MobileFaceNet",
  "MobileNetV2",
  "PretrainedNet",
  "RELEASED",
  "ResNet50",
  "from_config",
  "get_model",
  "imagenet_normalised",
  "mode",
]

# the trainable ones
ARCHS = ("custom", "resnet50", "mobilenet_v2", "cydral", "faceres", "faceres_deep", "mobilefacenet")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # compute dtypes; parameters stay float32
TORCHVISION = {"resnet50": ResNet50, "mobilenet_v2": MobileNetV2}
BACKBONES = TORCHVISION | {
  "cydral": Cydral,
  "faceres": FaceRes,
  "faceres_deep": FaceRes,
  "mobilefacenet": MobileFaceNet,
}  # pretrained backbones under new heads
# Released networks with their own heads, as published: evaluated and used, never trained (python -m jaxface.convert
# --released makes a workdir of one).
RELEASED = {
  "cydral_released": CydralReleased,
  "faceres_released": FaceResReleased,
  "faceres_deep_released": FaceResReleased,
}


def imagenet_normalised(arch: str) -> bool:
  """Whether the arch expects ImageNet mean/std normalised input (the torchvision backbones; the others take [0, 1]
  images and normalise them as their weights expect)."""
  return arch in TORCHVISION


def mode(model: nnx.Module, *, train: bool) -> nnx.Module:
  """The training (dropout on, batch statistics from the batch) or evaluation view of ``model``; a model without
  dropout or batch norm (the dlib networks have neither) is the same in both."""
  return nnx.view(model, deterministic=not train, use_running_average=not train, raise_if_not_found=False)


def get_model(
  arch: str,
  *,
  image_size: int,
  seed: int = 0,
  dtype=None,
  hidden: Sequence[int] = (128,),
  dropout: float = 0.3,
  widths: dict | None = None,
  age_head: str = "regression",
) -> nnx.Module:
  """A fresh model; ``widths`` (custom only) overrides trunk/branch/hidden widths; ``age_head``: ``AGE_HEADS``."""
  rngs = nnx.Rngs(params=seed)
  if arch == "custom":
    return CustomCNN(
      image_size=image_size, hidden=hidden, dropout=dropout, age_head=age_head, dtype=dtype, rngs=rngs, **(widths or {})
    )
  if arch in BACKBONES:
    backbone = BACKBONES[arch](dtype=dtype, rngs=rngs)
    return PretrainedNet(backbone, backbone.num_features, hidden, dropout, age_head=age_head, dtype=dtype, rngs=rngs)
  if arch in RELEASED:
    return RELEASED[arch](dtype=dtype, rngs=rngs)
  raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS + tuple(RELEASED)}")


def from_config(cfg) -> nnx.Module:
  """The model a training config describes (any object with its fields: arch, image_size, seed, dtype, hidden,
  dropout, widths, age_head), freshly initialised. The trainer builds it; inference takes its shapes with
  ``nnx.eval_shape(lambda: from_config(cfg))``."""
  return get_model(
    cfg.arch, image_size=cfg.image_size, seed=cfg.seed, dtype=DTYPES[cfg.dtype], hidden=cfg.hidden,
    dropout=cfg.dropout, widths=cfg.widths, age_head=cfg.age_head,
  )  # fmt: skip
