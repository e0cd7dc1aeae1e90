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

from jaxface.data import labels

TRAIN_FIELDS = ("image", "age", "gender")
EVAL_FIELDS = ("image", "age", "gender", "race", "file_name")
BALANCE_CAP = 4.0  # --balance: at most this many copies of a small stratum's faces an epoch
PARTIAL_FIELDS = ("age_min", "age_max", "age_std")  # a manifest's partial labels (training.losses)


def train_fields(builder) -> tuple[str, ...]:
  """What a training step reads from ``builder``'s splits: the partial labels too when its dataset has any."""
  return TRAIN_FIELDS + (PARTIAL_FIELDS if builder.info.metadata.get("partial_labels") else ())


def _select(fields: Sequence[str]):
  def select(example: dict) -> dict:
    return {k: example[k] for k in fields}

  return select


class Indexed(Sequence):
  """``source`` seen through a list of indices (repeats allowed): a weighted epoch."""

  def __init__(self, source: Sequence[dict], indices: np.ndarray):
    self.source, self.indices = source, np.asarray(indices, np.int64)

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, i: int) -> dict:
    return self.source[int(self.indices[i])]

  def __getitems__(self, keys: Sequence[int]) -> list[dict]:
    get = getattr(self.source, "__getitems__", None)
    idx = [int(self.indices[k]) for k in keys]
    return get(idx) if get else [self.source[i] for i in idx]


def source_weights(sources: np.ndarray, weights: dict[str, float]) -> np.ndarray:
  """Each example's weight from its source's (a source not named: 1)."""
  sources = np.asarray([s.decode() if isinstance(s, bytes) else str(s) for s in sources])
  have = sorted(set(sources.tolist()))
  unknown = sorted(set(weights) - set(have))
  if unknown:
    raise ValueError(f"source weights name {unknown}, which the training split does not hold (it holds {have})")
  bad = {k: v for k, v in weights.items() if not (isinstance(v, int | float) and v >= 0)}
  if bad:
    raise ValueError(f"source weights must be numbers >= 0: {bad}")
  return np.array([float(weights.get(s, 1.0)) for s in sources])


def stratum_weights(
  race: np.ndarray, age: np.ndarray, gender: np.ndarray, exponent: float, cap: float = BALANCE_CAP
) -> np.ndarray:
  """Each example's weight from its race x age band x gender stratum of ``n`` faces: ``(n_largest / n) **
  exponent``, at most ``cap``. So the largest stratum keeps its faces once, and a small one is repeated up to
  ``cap`` times (a stratum of a handful of faces is not repeated into memorised noise). Unknown labels (-1) form
  strata of their own."""
  bands = np.array([labels.age_band(a) for a in np.asarray(age)])
  strata = np.stack([np.asarray(race), bands, np.asarray(gender)], axis=1)
  _, which, counts = np.unique(strata, axis=0, return_inverse=True, return_counts=True)
  return np.minimum((counts.max() / counts[which.reshape(-1)]) ** exponent, cap)


def weighted_indices(w: np.ndarray, seed: int) -> np.ndarray:
  """Indices of a split's examples, example ``i`` taken ``floor(w[i])`` times and once more with probability
  ``w[i] - floor(w[i])``, drawn once from ``seed``. So an epoch holds about ``w`` times a group's faces, and
  ``w = 0`` leaves them out."""
  w = np.asarray(w, np.float64)
  extra = np.random.default_rng(seed).random(len(w)) < w - np.floor(w)
  idx = np.repeat(np.arange(len(w)), np.floor(w).astype(np.int64) + extra)
  if not len(idx):
    raise ValueError("the sampling weights leave no training example")
  return idx


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
