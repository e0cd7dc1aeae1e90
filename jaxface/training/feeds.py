"""How training batches reach the train step: streamed from the host, or resident on the device.

``stream``: grain reads, shuffles and batches this host's share on the CPU,
one dispatch per step (data of any size).

``device``: each split is read once (``data.arrays``) and split into one
block per device along the data axis; each process reads only its devices'
blocks. Each epoch's order is one permutation of the split computed on the
device from (seed, epoch); step ``i`` takes positions ``[i*B, (i+1)*B)`` of it.
Each device picks the batch's examples that its block holds and a
reduce-scatter hands every device its slice of the batch, so the global batches
do not depend on the device count or on how the devices are spread over
processes (2 hosts of 2 devices train as 1 host of 4, or of 1).
``steps_per_call`` steps run in one jitted ``lax.scan`` with the metrics summed
on the device (default: a whole epoch), and a whole split is evaluated in one
call. Per epoch, N mod B examples are left out, as in ``stream``.

On CPU the loops are not left to XLA: XLA:CPU (jaxlib 0.10) runs a train step
as the body of a ``lax.scan`` many times slower than the same step alone
(benchmarks/results/xla_cpu_scan.json). So on CPU the steps of a call are
unrolled (the default is one step per call: dispatch is small against a CPU
step) and evaluation loops over batches in Python, summing on the device.

``auto`` takes ``device`` when the train and validation arrays fit the budget
(a quarter of one device's memory; host RAM on CPU), else ``stream``, and says
which and why.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from jaxface import metrics, sharding
from jaxface.data import arrays, pipeline

INPUT_MODES = ("auto", "device", "stream")
_DATA_STREAM = 0x5EED  # folded into the seed's key: the epoch order's own stream, apart from augmentation's


def split_bytes(source: Sequence[dict]) -> int:
  """Bytes of a split's images as arrays."""
  return len(source) * np.asarray(source[0]["image"]).nbytes if len(source) else 0


def default_budget(device: jax.Device) -> int:
  """A quarter of the device's memory (host RAM for a CPU device)."""
  stats = device.memory_stats() if device.platform != "cpu" else None
  limit = (stats or {}).get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return limit // 4


def resolve(mode: str, nbytes: int, device: jax.Device, budget_mb: float = 0) -> str:
  """'device' or 'stream' for ``mode``; 'auto' compares ``nbytes`` with the budget and says what it chose."""
  if mode not in INPUT_MODES:
    raise ValueError(f"unknown input mode {mode!r}; choose one of {INPUT_MODES}")
  if mode != "auto":
    return mode
  budget = int(budget_mb * 2**20) if budget_mb else default_budget(device)
  chosen = "device" if nbytes <= budget else "stream"
  (logging.info if chosen == "device" else logging.warning)(
    "--input auto: the train and validation images take %.1f MB, %s the device-input budget of %.1f MB%s: %s input",
    nbytes / 2**20, "within" if chosen == "device" else "over", budget / 2**20,
    "" if budget_mb else f" (a quarter of {device.platform} memory)", chosen,
  )  # fmt: skip
  return chosen


def make(
  mode: str, builder, train_src, val_src, cfg, *, weighted, fields, mesh, train_step, eval_step, compiler_options=None
):  # fmt: skip
  """The feed of ``mode`` (``resolve``'s) for a run of ``cfg``: a StreamFeed over the sources, or a DeviceFeed over
  the builder's splits as arrays (process 0 caches them first). ``weighted``: the train split's examples, each as
  often as its source's weight, or None."""
  common = dict(
    train_step=train_step, eval_step=eval_step, mesh=mesh, batch_size=cfg.batch_size, seed=cfg.seed,
    compiler_options=compiler_options,
  )  # fmt: skip
  if mode == "stream":
    return StreamFeed(train_src, val_src, epochs=cfg.epochs, fields=fields, **common)
  splits = sharding.primary_first(
    lambda: [arrays.load(builder, split, fields) for split in ("train", "validation")], "jaxface:arrays-cached"
  )
  if weighted is not None:
    splits[0] = {k: v[weighted] for k, v in splits[0].items()}
  return DeviceFeed(*splits, steps_per_call=cfg.steps_per_call, **common)


class StreamFeed:
  """grain on the host: this process's share, one step per dispatch."""

  steps_per_call = 1

  def __init__(
    self, train_src, val_src, *, train_step, eval_step, mesh, batch_size: int, seed: int, epochs: int,
    compiler_options=None, fields=pipeline.TRAIN_FIELDS,
  ):  # fmt: skip
    self.val_src, self.batch_size, self.fields = val_src, batch_size, tuple(fields)
    self.batch_sh, repl = sharding.batch_sharded(mesh), sharding.replicated(mesh)
    n, p = jax.process_count(), jax.process_index()
    self.steps_per_epoch = pipeline.steps_per_epoch(len(train_src) // n * n, batch_size)
    log_share("train", pipeline.share(len(train_src), p, n, equal=True), len(train_src))
    log_share("validation", pipeline.share(len(val_src), p, n, equal=False), len(val_src))
    ds = pipeline.train_dataset(
      train_src, batch_size=batch_size // n, seed=seed, num_epochs=epochs, shard_index=p, shard_count=n, fields=fields
    )
    self.iterator = pipeline.iterate(ds)
    self._train_step = train_step and jitted(
      _summing(train_step), compiler_options, donate=(0, 1), out_shardings=(repl, repl)
    )
    self._eval_step = eval_step and jitted(
      functools.partial(_eval_summing, eval_step), compiler_options, donate=(1,), out_shardings=repl
    )

  def run(self, state, epoch: int, offset: int, k: int, acc=None):
    """``k`` steps; (state, ``acc`` plus their metric sums, on the device, seconds spent waiting for input)."""
    wait = 0.0
    for _ in range(k):
      t = time.perf_counter()
      batch = next(self.iterator)
      wait += time.perf_counter() - t
      state, acc = self._train_step(state, acc, sharding.global_batch(batch, self.batch_sh))
    return state, acc, wait

  def evaluate(self, state) -> dict:
    """Metric sums over the validation split (padded last batch, masked), added on the device."""
    total = None
    n, p = jax.process_count(), jax.process_index()
    batches = pipeline.eval_batches(
      self.val_src, batch_size=self.batch_size // n, shard_index=p, shard_count=n, fields=self.fields
    )
    for batch in batches:
      total = self._eval_step(state, total, sharding.global_batch(batch, self.batch_sh))
    return total


class DeviceFeed:
  """Whole splits on the devices; ``steps_per_call`` steps and a whole evaluation per dispatch (see above for CPU)."""

  iterator = None  # nothing to checkpoint: the position is (epoch, step)

  def __init__(
    self, train: dict[str, np.ndarray], val: dict[str, np.ndarray], *, train_step, eval_step, mesh,
    batch_size: int, seed: int, steps_per_call: int, compiler_options,
  ):  # fmt: skip
    """``train``, ``val``: whole splits (memory-mapped arrays, say); this process reads only its devices' rows."""
    repl, batch_sh, data = sharding.replicated(mesh), sharding.batch_sharded(mesh), P("data")
    on_cpu = mesh.devices.flat[0].platform == "cpu"
    n_dev, (first, count) = mesh.devices.size, sharding.local_block(mesh)
    sharding.check_batch_divides(batch_size, mesh)
    per_dev = batch_size // n_dev
    n, n_val = len(train["age"]), len(val["age"])
    self.steps_per_epoch = pipeline.steps_per_epoch(n, batch_size)
    m = -(-n // n_dev)  # each device's block of the train split (the last ones padded)
    rows = slice(min(first * m, n), min((first + count) * m, n))
    log_share("train", rows, n)
    self.train = _global(batch_sh, _padded({k: v[rows] for k, v in train.items()}, count * m), n_dev * m)
    val_local, val_rows, per_dev_val = _val_blocks(val, n_dev, first, count, per_dev)
    log_share("validation", val_rows, n_val)
    self.val = _global(batch_sh, val_local, n_dev * per_dev_val)
    self.eval_batches = per_dev_val // per_dev
    self.steps_per_call = min(steps_per_call or (1 if on_cpu else self.steps_per_epoch), self.steps_per_epoch)
    self.data_key = np.asarray(jax.random.key_data(jax.random.fold_in(jax.random.key(seed), _DATA_STREAM)))
    take = _local(mesh, functools.partial(_take, batch_size=batch_size, block=m), (data, P(), P()))
    val_batch = _local(mesh, functools.partial(_val_batch, per_dev=per_dev), (data, P()))
    chunk = functools.partial(_chunk, train_step=train_step, take=take, n=n, unroll=on_cpu)
    self._chunk = jitted(chunk, compiler_options, static=(5,), donate=(0, 6), out_shardings=(repl, repl))
    evaluate = functools.partial(_evaluate, eval_step=eval_step, val_batch=val_batch, batches=self.eval_batches)
    self._evaluate = jitted(evaluate, compiler_options, out_shardings=repl)
    evaluate_batch = functools.partial(_evaluate_batch, eval_step=eval_step, val_batch=val_batch)
    self._evaluate_batch = jitted(evaluate_batch, compiler_options, donate=(3,), out_shardings=repl)
    self._on_cpu = on_cpu

  def run(self, state, epoch: int, offset: int, k: int, acc=None):
    """Steps ``offset`` to ``offset + k`` of ``epoch`` in one call; (state, ``acc`` plus their metric sums, 0 s
    input wait)."""
    state, acc = self._chunk(state, self.train, self.data_key, epoch, offset, k, acc)
    return state, acc, 0.0

  def evaluate(self, state) -> dict:
    """Metric sums over the validation split, on the device."""
    if not self._on_cpu:
      return self._evaluate(state, self.val)
    total = None
    for j in range(self.eval_batches):
      total = self._evaluate_batch(state, self.val, j, total)
    return total


def jitted(fn, compiler_options, *, out_shardings, donate=(), static=()):
  """Training's one jit: ``fn`` compiled with the run's XLA options (``xla.options``), its outputs as given."""
  return jax.jit(
    fn, static_argnums=static, donate_argnums=donate, out_shardings=out_shardings, compiler_options=compiler_options
  )


def _summing(train_step):
  def step(state, acc, batch):
    state, sums = train_step(state, batch)
    return state, metrics.add(acc, sums)

  return step


def _eval_summing(eval_step, state, acc, batch):
  return metrics.add(acc, eval_step(state, batch))


# DeviceFeed's programs. ``split``: a whole split, in one block per device along the data axis.


def _local(mesh, fn, in_specs):
  """``fn`` on each device's block; its results stay split along the data axis."""
  return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=P("data"))


def _zeros_like_sums(fn, *args):
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, *args))


def _order(data_key, epoch, n: int):
  """The epoch's order of the train split's ``n`` examples, from (seed, epoch) alone."""
  return jax.random.permutation(jax.random.fold_in(jax.random.wrap_key_data(data_key), epoch), n)


def _take(split, perm, i, *, batch_size: int, block: int):
  """Step i's batch: positions [i*B, (i+1)*B) of the epoch's order (inside ``_local``: ``block`` rows a device)."""
  idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size) - jax.lax.axis_index("data") * block
  mine = (idx >= 0) & (idx < block)

  def pick(v):  # this block's examples of the batch, zeros elsewhere; summed, each device keeps its slice
    got = jnp.where(mine.reshape(-1, *[1] * (v.ndim - 1)), v[jnp.clip(idx, 0, block - 1)], 0).astype(v.dtype)
    return jax.lax.psum_scatter(got, "data", scatter_dimension=0, tiled=True)

  return {key: pick(v) for key, v in split.items()}


def _val_batch(split, j, *, per_dev: int):
  return {key: jax.lax.dynamic_slice_in_dim(v, j * per_dev, per_dev) for key, v in split.items()}


def _chunk(state, split, data_key, epoch, offset, k, acc, *, train_step, take, n: int, unroll: bool):
  """Steps ``offset`` to ``offset + k`` of the epoch, their metric sums added to ``acc``."""
  perm = _order(data_key, epoch, n)  # in the call: no separate program between the steps (see metrics.add)

  def body(carry, i):
    state, acc = carry
    state, sums = train_step(state, take(split, perm, offset + i))
    return (state, metrics.add(acc, sums)), None

  if acc is None:
    acc = _zeros_like_sums(lambda s, b: train_step(s, b)[1], state, take(split, perm, 0))
  if unroll:  # CPU: unrolled in the trace (a length-1 scan still lowers to a while loop)
    carry = (state, acc)
    for i in range(k):
      carry, _ = body(carry, i)
    return carry
  (state, acc), _ = jax.lax.scan(body, (state, acc), jnp.arange(k))
  return state, acc


def _evaluate(state, split, *, eval_step, val_batch, batches: int):
  def body(acc, j):
    return metrics.add(acc, eval_step(state, val_batch(split, j))), None

  zeros = _zeros_like_sums(eval_step, state, val_batch(split, 0))
  return jax.lax.scan(body, zeros, jnp.arange(batches))[0]


def _evaluate_batch(state, split, j, acc, *, eval_step, val_batch):
  return metrics.add(acc, eval_step(state, val_batch(split, j)))


def log_share(split: str, rows: slice, n: int) -> None:
  """Which examples of a split this process reads (the multi-host tests check that the shares tile the split)."""
  logging.info(
    "process %d/%d reads %s examples [%d:%d:%d] of %d",
    jax.process_index(), jax.process_count(), split, rows.start, rows.stop, rows.step or 1, n,
  )  # fmt: skip


def _global(sh, local: dict[str, np.ndarray], rows: int) -> dict[str, jax.Array]:
  """Arrays of ``rows`` rows split along the data axis, from this process's devices' blocks."""
  return {
    k: jax.make_array_from_process_local_data(sh, np.ascontiguousarray(v), (rows, *v.shape[1:]))
    for k, v in local.items()
  }


def _padded(arrays: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
  """Zero rows appended up to ``rows`` (the permutation never points at them)."""
  return {k: np.concatenate([v, np.zeros((rows - len(v), *v.shape[1:]), v.dtype)]) for k, v in arrays.items()}


def _val_blocks(val: dict[str, np.ndarray], n_dev: int, first: int, count: int, per_dev: int):
  """Each of this process's devices' block of the split, padded to whole batches with a ``mask``.

  Device ``d`` holds examples ``[d*s, (d+1)*s)`` (s = ceil(n / devices)), so every example is
  evaluated exactly once across devices and processes; padding repeats a real example, masked out.
  """
  n = len(val["age"])
  s = -(-n // n_dev)
  per_dev_val = max(1, -(-s // per_dev)) * per_dev
  rows = slice(min(first * s, n), min((first + count) * s, n))
  mine = {k: np.asarray(v[rows]) for k, v in val.items()}
  blocks = {k: [] for k in (*mine, "mask")}
  for d in range(first, first + count):
    real = np.arange(d * s, min((d + 1) * s, n)) - rows.start
    idx = np.concatenate([real, np.full(per_dev_val - len(real), real[-1] if len(real) else 0)])
    for k, v in mine.items():
      blocks[k].append(v[idx] if len(v) else np.zeros((per_dev_val, *v.shape[1:]), v.dtype))
    blocks["mask"].append(np.arange(per_dev_val) < len(real))
  return {k: np.concatenate(v) for k, v in blocks.items()}, rows, per_dev_val
