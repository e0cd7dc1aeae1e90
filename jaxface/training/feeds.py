"""How training batches reach the train step: streamed from the host, or resident on the device.

``stream``: grain reads, shuffles and batches this host's share on the CPU,
one dispatch per step (data of any size).

``device``: each split is read once (``data.arrays``) into one uint8 array,
replicated on every device of the mesh (each device then gathers its own
slice of every batch locally: no collectives for input, and any global batch
can be drawn). Each epoch's order is a permutation computed on the device
from (seed, epoch); step ``i`` takes positions ``[i*B, (i+1)*B)`` of it, so
the global batches do not depend on the device count. ``steps_per_call``
steps run in one jitted ``lax.scan`` with the metrics summed on the device
(default: a whole epoch), and a whole split is evaluated in one call. The
remainder of an epoch (N mod B examples) is left out, as in ``stream``.

On CPU the loops are not left to XLA: XLA:CPU (jaxlib 0.10) ran the custom
CNN's train step (64 px, batch 64) in 0.46 s alone and in 35 s as the body
of a ``lax.scan`` (0.60 and 32 s with XLA's default options); unrolled, 0.44 s
a step (benchmarks/results/xla_cpu_scan.json). So on CPU the steps of a call are unrolled (the default is one step
per call: dispatch costs ~0.1 ms against a step of ~0.1 s or more) and
evaluation loops over batches in Python, summing on the device.

``auto`` takes ``device`` when the train and validation arrays fit the budget
(a quarter of one device's memory; host RAM on CPU), else ``stream``, and says
which and why.
"""

from __future__ import annotations

import logging
import operator
import os
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxface import sharding
from jaxface.data import pipeline

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


class StreamFeed:
  """grain on the host: this process's share, one step per dispatch."""

  steps_per_call = 1

  def __init__(self, train_src, val_src, *, train_step, eval_step, mesh, batch_size: int, seed: int, epochs: int):
    self.train_step, self.eval_step, self.val_src, self.batch_size = train_step, eval_step, val_src, batch_size
    self.batch_sh = sharding.batch_sharded(mesh)
    n, p = jax.process_count(), jax.process_index()
    self.steps_per_epoch = pipeline.steps_per_epoch(len(train_src) // n * n, batch_size)
    ds = pipeline.train_dataset(
      train_src, batch_size=batch_size // n, seed=seed, num_epochs=epochs, shard_index=p, shard_count=n
    )
    self.iterator = pipeline.iterate(ds)

  def run(self, state, epoch: int, offset: int, k: int):
    """``k`` steps; (state, summed metrics on the device, seconds spent waiting for input)."""
    acc, wait = None, 0.0
    for _ in range(k):
      t = time.perf_counter()
      batch = next(self.iterator)
      wait += time.perf_counter() - t
      state, sums = self.train_step(state, sharding.global_batch(batch, self.batch_sh))
      acc = sums if acc is None else jax.tree.map(operator.add, acc, sums)
    return state, acc, wait

  def evaluate(self, state) -> dict:
    """Metric sums over the validation split (padded last batch, masked), added on the device."""
    total = None
    n, p = jax.process_count(), jax.process_index()
    for batch in pipeline.eval_batches(self.val_src, batch_size=self.batch_size // n, shard_index=p, shard_count=n):
      sums = self.eval_step(state, sharding.global_batch(batch, self.batch_sh))
      total = sums if total is None else jax.tree.map(operator.add, total, sums)
    return total


class DeviceFeed:
  """Whole splits on the device; ``steps_per_call`` steps and a whole evaluation per dispatch (see above for CPU)."""

  iterator = None  # nothing to checkpoint: the position is (epoch, step)

  def __init__(
    self, train: dict[str, np.ndarray], val: dict[str, np.ndarray], *, train_step, eval_step, mesh,
    batch_size: int, seed: int, steps_per_call: int, compiler_options,
  ):  # fmt: skip
    repl, batch_sh = sharding.replicated(mesh), sharding.batch_sharded(mesh)
    on_cpu = mesh.devices.flat[0].platform == "cpu"
    n = len(train["age"])
    self.steps_per_epoch = pipeline.steps_per_epoch(n, batch_size)
    self.steps_per_call = min(steps_per_call or (1 if on_cpu else self.steps_per_epoch), self.steps_per_epoch)
    self.train = jax.device_put(train, repl)
    self.val = jax.device_put(_padded_batches(val, batch_size), repl)
    self.data_key = jax.random.key_data(jax.random.fold_in(jax.random.key(seed), _DATA_STREAM))
    constrain = lambda batch: jax.tree.map(lambda v: jax.lax.with_sharding_constraint(v, batch_sh), batch)

    def zeros_like_sums(fn, *args):
      return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, *args))

    def order(data_key, epoch):
      return jax.random.permutation(jax.random.fold_in(jax.random.wrap_key_data(data_key), epoch), n)

    def chunk(state, data, perm, offset, k):
      def body(carry, i):
        state, acc = carry
        idx = jax.lax.dynamic_slice_in_dim(perm, (offset + i) * batch_size, batch_size)
        state, sums = train_step(state, constrain({key: v[idx] for key, v in data.items()}))
        return (state, jax.tree.map(operator.add, acc, sums)), None

      first = constrain({key: v[:batch_size] for key, v in data.items()})
      zeros = zeros_like_sums(lambda s, b: train_step(s, b)[1], state, first)
      if on_cpu:  # unrolled in the trace (a length-1 scan still lowers to a while loop)
        carry = (state, zeros)
        for i in range(k):
          carry, _ = body(carry, i)
        return carry
      (state, acc), _ = jax.lax.scan(body, (state, zeros), jnp.arange(k))
      return state, acc

    def evaluate(state, val):
      def body(acc, batch):
        return jax.tree.map(operator.add, acc, eval_step(state, constrain(batch))), None

      first = jax.tree.map(lambda v: v[0], val)
      return jax.lax.scan(body, zeros_like_sums(eval_step, state, first), val)[0]

    def evaluate_batch(state, val, i):
      return eval_step(state, constrain(jax.tree.map(lambda v: v[i], val)))

    self._order = jax.jit(order, out_shardings=repl)
    self._chunk = jax.jit(
      chunk, static_argnums=(4,), donate_argnums=(0,), out_shardings=(repl, repl), compiler_options=compiler_options
    )
    self._evaluate = jax.jit(evaluate, out_shardings=repl, compiler_options=compiler_options)
    self._evaluate_batch = jax.jit(evaluate_batch, out_shardings=repl, compiler_options=compiler_options)
    self._on_cpu, self._epoch, self._perm = on_cpu, None, None

  def run(self, state, epoch: int, offset: int, k: int):
    """Steps ``offset`` to ``offset + k`` of ``epoch`` in one call; (state, summed metrics, 0 s input wait)."""
    if epoch != self._epoch:
      self._epoch, self._perm = epoch, self._order(self.data_key, epoch)
    state, acc = self._chunk(state, self.train, self._perm, offset, k)
    return state, acc, 0.0

  def evaluate(self, state) -> dict:
    """Metric sums over the validation split, on the device."""
    if not self._on_cpu:
      return self._evaluate(state, self.val)
    total = None
    for i in range(len(self.val["mask"])):
      sums = self._evaluate_batch(state, self.val, i)
      total = sums if total is None else jax.tree.map(operator.add, total, sums)
    return total


def _padded_batches(arrays: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
  """(n_batches, batch_size, ...) arrays and a ``mask``: the last batch padded with copies of the last example."""
  n = len(arrays["age"])
  nb = -(-n // batch_size)
  idx = np.minimum(np.arange(nb * batch_size), n - 1)
  out = {k: v[idx].reshape(nb, batch_size, *v.shape[1:]) for k, v in arrays.items()}
  out["mask"] = (np.arange(nb * batch_size) < n).reshape(nb, batch_size)
  return out
