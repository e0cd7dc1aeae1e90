"""One process of a 2-process run of both feeds' loops, as the trainer drives them, for tests/test_multihost.py.

    python tests/multihost_feeds.py PORT PROCESS_ID EPOCHS

Small steps with a cross-device sum, many of them: a deadlock between the
processes' collectives shows as a process that never prints "done".
"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxface import sharding  # noqa: E402
from jaxface.training import feeds  # noqa: E402


def main(port: int, process_id: int, epochs: int) -> None:
  jax.distributed.initialize(f"127.0.0.1:{port}", 2, process_id)
  mesh = sharding.data_mesh(jax.devices())
  rng = np.random.default_rng(0)
  n = 96
  split = {
    "image": rng.integers(0, 255, (n, 8, 8, 3), np.uint8), "age": rng.integers(1, 90, n).astype(np.int32),
    "gender": rng.integers(0, 2, n).astype(np.int32),
  }  # fmt: skip

  def predict(w, image):
    x = image.reshape(image.shape[0], -1).astype(jnp.float32) / 255
    return jnp.tanh(jnp.tanh(x @ w) @ w.T).sum(-1)  # enough work per step to overlap the processes' calls

  def sums(w, batch):
    err = jnp.abs(predict(w, batch["image"]) - batch["age"])
    mask = batch.get("mask", jnp.ones_like(err, bool))
    return {"n": mask.sum().astype(jnp.float32), "loss": jnp.where(mask, err, 0).sum()}

  def train_step(state, batch):
    g = jax.grad(lambda w: sums(w, batch)["loss"])(state["w"])
    return {"w": state["w"] - 1e-4 * g}, sums(state["w"], batch)

  def eval_step(state, batch):
    return sums(state["w"], batch)

  records = [{**{k: v[i] for k, v in split.items()}, "race": 0, "file_name": f"{i}.jpg"} for i in range(n)]
  kw = dict(train_step=train_step, eval_step=eval_step, mesh=mesh, batch_size=8, seed=0)
  for feed in (
    feeds.DeviceFeed(split, split, steps_per_call=1, compiler_options=None, **kw),
    feeds.StreamFeed(records, records, epochs=epochs, **kw),
  ):
    state = jax.device_put({"w": jnp.full((8 * 8 * 3, 256), 0.01)}, sharding.replicated(mesh))
    for epoch in range(epochs):
      acc = None
      for done in range(feed.steps_per_epoch):
        state, acc, _ = feed.run(state, epoch, done, 1, acc)
      train, val = jax.device_get((acc, feed.evaluate(state)))
      assert train["n"] == feed.steps_per_epoch * 8 and val["n"] == n, (train["n"], val["n"])
  print("done", flush=True)


if __name__ == "__main__":
  main(*map(int, sys.argv[1:]))
