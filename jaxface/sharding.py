"""One data mesh: parameters replicated, batches split along ``data``."""

from __future__ import annotations

import collections

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

PLATFORMS = ("auto", "cpu", "gpu", "tpu")


def select_devices(which: str = "auto") -> list:
  """Every device of one platform: the default one for 'auto', else 'cpu' | 'gpu' | 'tpu'."""
  if which == "auto":
    return jax.devices()
  try:
    return jax.devices(which)
  except RuntimeError as e:
    raise RuntimeError(f"--devices {which}: no {which} devices here ({e}); available: {jax.devices()}") from None


def data_mesh(devices: list) -> Mesh:
  """Refuses processes with unequal device counts: each process feeds an equal share of every batch."""
  counts = collections.Counter(d.process_index for d in devices)
  if len(set(counts.values())) > 1:
    each = ", ".join(f"process {p}: {n}" for p, n in sorted(counts.items()))
    raise ValueError(
      f"the processes have unequal numbers of devices ({each}); each feeds an equal share of every batch, so give "
      "every process the same number (e.g. the same CUDA_VISIBLE_DEVICES count or --xla_force_host_platform_device_count)"
    )
  return Mesh(np.asarray(devices), ("data",), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def check_batch_divides(global_batch: int, mesh: Mesh) -> None:
  """A clear error when the global batch does not divide over the mesh's devices."""
  n_dev = mesh.devices.size
  if global_batch % n_dev:
    raise ValueError(f"batch size {global_batch} does not divide over {n_dev} devices; use a multiple of {n_dev}")


def global_batch(local: dict, sharding: NamedSharding) -> dict:
  """Device arrays of the global batch from this host's numpy share (array fields only)."""
  return {
    k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
    for k, v in local.items()
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf"
  }


def local_block(mesh: Mesh) -> tuple[int, int]:
  """(first, count): this process's devices are positions [first, first + count) of the data axis."""
  mine = [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]
  if not mine or mine != list(range(mine[0], mine[0] + len(mine))):
    raise ValueError(f"process {jax.process_index()}'s devices are not contiguous on the data mesh: positions {mine}")
  return mine[0], len(mine)


def primary_first(fn, name: str):
  """``fn()`` on process 0, then on the others once it is done (it writes a cache they read)."""
  if jax.process_index() == 0:
    out = fn()
  barrier(name)
  if jax.process_index() != 0:
    out = fn()
  return out


def barrier(name: str) -> None:
  """Every process waits here for the others (a no-op in a single process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
