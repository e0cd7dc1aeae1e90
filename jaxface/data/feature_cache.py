"""Cached activations of a frozen backbone prefix, as a data source.

For the cpu preset: the first layers of a pretrained backbone are frozen (in
evaluation mode, so their output depends on the image alone), run once over
every image and its mirror, and kept in memory; training then runs only the
remaining layers. Random horizontal flip survives as the choice between the two
cached views; other augmentation does not (the preset says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np
from tqdm import tqdm

from jaxface.data import pipeline

LABEL_FIELDS = ("age", "gender", "race", "file_name")


class FeatureSource(Sequence):
  """Examples {'feats': (views, h, w, c) float16, age, gender, race, file_name}."""

  def __init__(self, feats: np.ndarray, labels: dict[str, np.ndarray]):
    self.feats, self.labels = feats, labels

  def __len__(self) -> int:
    return len(self.feats)

  def __getitem__(self, i: int) -> dict:
    return {"feats": self.feats[i], **{k: v[i] for k, v in self.labels.items()}}


def build(
  source: Sequence[dict], prefix: Callable, *, batch_size: int, mirror: bool, desc: str = "caching"
) -> FeatureSource:
  """Runs ``prefix`` (uint8 images -> activations) over ``source``, and over mirrored images if ``mirror``."""
  feats, labels = [], {k: [] for k in LABEL_FIELDS}
  batches = pipeline.eval_dataset(source, batch_size=batch_size)
  for batch in tqdm(batches, desc=desc, total=len(batches), mininterval=10):
    m = batch["mask"]
    views = [prefix(batch["image"])]
    if mirror:
      views.append(prefix(batch["image"][:, :, ::-1]))
    feats.append(np.stack([np.asarray(jax.device_get(v), np.float16) for v in views], axis=1)[m])
    for k in LABEL_FIELDS:
      labels[k].append(np.asarray(batch[k])[m])
  return FeatureSource(np.concatenate(feats), {k: np.concatenate(v) for k, v in labels.items()})
