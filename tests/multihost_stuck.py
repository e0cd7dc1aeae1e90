"""One process of a 2-process job whose process 0 waits in a collective that process 1 never joins.

    python tests/multihost_stuck.py PORT PROCESS_ID STALL_S

For tests/test_multihost.py: the guard (``jaxface.training.guard``) must end it,
on SIGTERM or after STALL_S seconds without progress (0: no stall limit).
"""

import os
import sys
import time

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxface import sharding  # noqa: E402
from jaxface.training import guard  # noqa: E402


def main(port: int, process_id: int, stall_s: float) -> None:
  guard.start()
  jax.distributed.initialize(f"127.0.0.1:{port}", 2, process_id)
  guard.start(stall_s, multi=True, grace_s=3)
  mesh = sharding.data_mesh(jax.devices())
  x = jax.make_array_from_process_local_data(sharding.batch_sharded(mesh), np.ones((2, 4), np.float32), (4, 4))
  total = jax.jit(jnp.sum, out_shardings=sharding.replicated(mesh))
  print(jax.device_get(total(x)), flush=True)  # both processes: the collective works
  if process_id == 1:
    time.sleep(600)  # never joins the next one
  guard.beat("the collective that process 1 never joins")
  print("stuck", flush=True)
  jax.block_until_ready(total(x))
  print("the collective returned", flush=True)


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
