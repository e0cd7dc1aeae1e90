"""A frozen backbone prefix, run once: the mobilenet_v2 cpu preset's shortcut, behind one boundary.

The first ``freeze_until`` layers of a pretrained backbone are frozen (in
evaluation mode, so their output depends on the image alone), run once over
every image and its mirror, and kept in memory; training then runs only the
remaining layers. ``apply`` hands the trainer an ordinary model definition and
ordinary data sources: the sources' ``image`` is the cached activation (two
views: the image and its mirror), the model starts at layer ``freeze_until``,
and its input function picks a view (random flip is the only augmentation that
survives). Checkpoints hold the whole model, so evaluation and prediction run
on images as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from jaxface.data import pipeline
from jaxface.models import MobileNetV2
from jaxface.training.steps import ModelDef


class FeatureSource(Sequence):
  """A source's examples with ``image`` replaced by cached activations (views, h, w, c) in float16."""

  def __init__(self, feats: np.ndarray, labels: dict[str, np.ndarray]):
    self.feats, self.labels = feats, labels

  def __len__(self) -> int:
    return len(self.feats)

  def __getitem__(self, i: int) -> dict:
    return {"image": self.feats[i], **{k: v[i] for k, v in self.labels.items()}}


def cache(source: Sequence[dict], prefix, *, batch_size: int, mirror: bool, desc: str) -> FeatureSource:
  """Runs ``prefix`` (uint8 images -> activations) over ``source``, and over mirrored images if ``mirror``."""
  label_fields = [f for f in pipeline.EVAL_FIELDS if f != "image"]
  feats, labels = [], {k: [] for k in label_fields}
  batches = pipeline.eval_dataset(source, batch_size=batch_size)
  for batch in tqdm(batches, desc=desc, total=len(batches), mininterval=10):
    m = batch["mask"]
    views = [prefix(batch["image"])]
    if mirror:
      views.append(prefix(batch["image"][:, :, ::-1]))
    feats.append(np.stack([np.asarray(jax.device_get(v), np.float16) for v in views], axis=1)[m])
    for k in label_fields:
      labels[k].append(np.asarray(batch[k])[m])
  return FeatureSource(np.concatenate(feats), {k: np.concatenate(v) for k, v in labels.items()})


def _pick_view(feats: jax.Array, rng: jax.Array | None) -> jax.Array:
  """The image's activations, or (training, with a key) its mirror's for a random half of the batch."""
  feats = feats.astype(jnp.float32)
  if rng is None or feats.shape[1] == 1:
    return feats[:, 0]
  mirror = jax.random.bernoulli(rng, 0.5, (feats.shape[0], 1, 1, 1))
  return jnp.where(mirror, feats[:, 1], feats[:, 0])


def _starting_at(graphdef: nnx.GraphDef, params, batch_stats, start: int) -> nnx.GraphDef:
  model = nnx.merge(graphdef, params, batch_stats)
  model.start = start
  return nnx.split(model, nnx.Param, nnx.BatchStat)[0]


def apply(
  mdef: ModelDef, params, batch_stats, freeze_until: int, train_src, val_src, *, batch_size: int, compiler_options
) -> tuple[ModelDef, Sequence[dict], Sequence[dict]]:
  """(ModelDef that starts at ``freeze_until``, cached train source, cached validation source)."""
  if not isinstance(getattr(nnx.merge(mdef.eval, params, batch_stats), "backbone", None), MobileNetV2):
    raise ValueError("freeze_until (cached frozen layers) is implemented for mobilenet_v2 only")

  def prefix(images):
    model = nnx.merge(mdef.eval, params, batch_stats)
    return model.backbone(mdef.inputs(images, None), stop=freeze_until)

  prefix = jax.jit(prefix, compiler_options=compiler_options)
  t = time.perf_counter()
  train_src = cache(train_src, prefix, batch_size=batch_size, mirror=True, desc="caching train")
  val_src = cache(val_src, prefix, batch_size=batch_size, mirror=False, desc="caching validation")
  logging.info(
    "Cached backbone layers 0-%d of %d images in %.0fs", freeze_until - 1, len(train_src) + len(val_src),
    time.perf_counter() - t,
  )  # fmt: skip
  starts = lambda g: _starting_at(g, params, batch_stats, freeze_until)
  return ModelDef(starts(mdef.train), starts(mdef.eval), _pick_view), train_src, val_src
