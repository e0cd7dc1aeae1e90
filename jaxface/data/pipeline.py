"""grain input pipelines over the utk_face data sources.

The host only reads, shuffles and batches uint8 pixels; rescaling,
normalisation and augmentation run on the device inside the jitted step
(``jaxface.data.augment``), which keeps host->device transfers 4x smaller and
the host far from being the bottleneck.
"""

from __future__ import annotations

from collections.abc import Sequence

import grain
import numpy as np

TRAIN_FIELDS = ("image", "age", "gender")
EVAL_FIELDS = ("image", "age", "gender", "race", "file_name")
PARTIAL_FIELDS = ("age_min", "age_max", "age_std")  # a manifest's partial labels (training.losses)


def train_fields(builder) -> tuple[str, ...]:
  """What a training step reads from ``builder``'s splits: the partial labels too when its dataset has any."""
  return TRAIN_FIELDS + (PARTIAL_FIELDS if builder.info.metadata.get("partial_labels") else ())


def _select(fields: Sequence[str]):
  def select(example: dict) -> dict:
    return {k: example[k] for k in fields}

  return select


def share(n: int, shard_index: int, shard_count: int, *, equal: bool) -> slice:
  """One host's examples of a split of ``n``: every ``shard_count``-th from ``shard_index``.

  ``equal``: first leave out the last ``n mod shard_count``, so that every host takes as many steps.
  """
  return slice(shard_index, n - n % shard_count if equal else n, shard_count)


def train_dataset(
  source: Sequence[dict],
  *,
  batch_size: int,
  seed: int,
  num_epochs: int | None,
  shard_index: int = 0,
  shard_count: int = 1,
  fields: Sequence[str] = TRAIN_FIELDS,
) -> grain.MapDataset:
  """Shuffled batches of this host's share, reshuffled every epoch; partial batches dropped.

  The result is indexable: element ``i`` is global step ``i``'s batch, and
  there are ``steps_per_epoch(...)`` batches per epoch.
  """
  ds = grain.MapDataset.source(source)
  ds = ds[share(len(ds), shard_index, shard_count, equal=True)]
  ds = ds.seed(seed).shuffle().map(_select(fields))
  return ds.batch(batch_size, drop_remainder=True).repeat(num_epochs)


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
  steps = num_examples // global_batch_size
  if steps == 0:
    raise ValueError(f"batch size {global_batch_size} is larger than the {num_examples} training examples")
  return steps


def _pad(batch_size: int):
  def pad(batch: dict) -> dict:
    n = len(batch["age"])
    out = {
      k: np.concatenate([v, np.repeat(v[-1:], batch_size - n, axis=0)]) if n < batch_size else v
      for k, v in batch.items()
    }
    out["mask"] = np.arange(batch_size) < n
    return out

  return pad


def eval_dataset(
  source: Sequence[dict],
  *,
  batch_size: int,
  shard_index: int = 0,
  shard_count: int = 1,
  fields: Sequence[str] = EVAL_FIELDS,
) -> grain.MapDataset:
  """Every example of this host's share once, in order, in batches of a static size.

  The last batch is padded (with copies of its last example) and ``mask``
  marks the real examples, so metrics count each example exactly once.
  """
  ds = grain.MapDataset.source(source)[share(len(source), shard_index, shard_count, equal=False)]
  ds = ds.map(_select(fields))
  return ds.batch(batch_size, drop_remainder=False).map(_pad(batch_size))


def eval_batches(
  source: Sequence[dict],
  *,
  batch_size: int,
  shard_index: int = 0,
  shard_count: int = 1,
  fields: Sequence[str] = EVAL_FIELDS,
):
  """``eval_dataset``'s batches, plus fully masked ones so every host yields the same number."""
  per_host = -(-len(source) // shard_count)
  n_batches = -(-per_host // batch_size)
  last = None
  for last in eval_dataset(
    source, batch_size=batch_size, shard_index=shard_index, shard_count=shard_count, fields=fields
  ):
    n_batches -= 1
    yield last
  for _ in range(n_batches):
    yield {**last, "mask": np.zeros_like(last["mask"])}


def iterate(ds: grain.MapDataset, *, num_threads: int = 2, prefetch: int = 4) -> grain.DatasetIterator:
  """A prefetching iterator; ``get_state()``/``set_state()`` save and restore its position."""
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)))
