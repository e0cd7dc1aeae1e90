"""The server's batcher under concurrent requests: gathering, the max-batch limit, errors, a dead worker."""

import asyncio

import numpy as np
import pytest

from jaxface.serving.batcher import Batcher


def crops(n: int, value: int) -> np.ndarray:
  return np.full((n, 2, 2, 3), value, np.uint8)


class Model:
  """Records each call's batch size; fails the calls that contain a crop of value ``bad``."""

  def __init__(self, bad: int | None = None):
    self.sizes, self.bad = [], bad

  def __call__(self, x: np.ndarray) -> dict:
    self.sizes.append(len(x))
    if self.bad is not None and (x[:, 0, 0, 0] == self.bad).any():
      raise RuntimeError("the model failed on this batch")
    return {"age": x[:, 0, 0, 0].astype(np.float32), "p_female": np.zeros(len(x), np.float32)}


async def _all(b: Batcher, requests: list[np.ndarray]) -> list:
  return await asyncio.gather(*(b(r) for r in requests), return_exceptions=True)


def test_concurrent_requests_are_gathered_and_each_gets_its_own_rows():
  model = Model()
  b = Batcher(model, max_batch=64, max_wait_s=0.05)
  out = asyncio.run(_all(b, [crops(i % 3 + 1, i) for i in range(10)]))
  assert sum(model.sizes) == sum(i % 3 + 1 for i in range(10)) and len(model.sizes) < 10
  for i, o in enumerate(out):
    np.testing.assert_array_equal(o["age"], np.full(i % 3 + 1, i))


def test_a_call_never_exceeds_max_batch_unless_one_request_alone_does():
  model = Model()
  b = Batcher(model, max_batch=5, max_wait_s=0.05)
  requests = [crops(n, i) for i, n in enumerate([3, 3, 2, 4, 1, 7, 2])]
  out = asyncio.run(_all(b, requests))
  assert all(s <= 5 for s in model.sizes if s != 7) and 7 in model.sizes and sum(model.sizes) == 22
  for i, o in enumerate(out):
    np.testing.assert_array_equal(o["age"], np.full(len(requests[i]), i))


def test_an_error_reaches_exactly_the_requests_of_that_call_and_the_next_succeed():
  model = Model(bad=99)
  b = Batcher(model, max_batch=4, max_wait_s=0.05)

  async def scenario():
    first = await _all(b, [crops(2, 99), crops(2, 1), crops(3, 2)])  # 99 and 1 share a call; 2 does not fit in it
    return first, await b(crops(1, 5))

  (bad, shared, alone), after = asyncio.run(scenario())
  assert isinstance(bad, RuntimeError) and isinstance(shared, RuntimeError) and "failed on this batch" in str(bad)
  np.testing.assert_array_equal(alone["age"], [2, 2, 2])
  np.testing.assert_array_equal(after["age"], [5])


def test_a_dead_worker_fails_its_waiting_requests_and_the_next_request_starts_another(monkeypatch, caplog):
  b = Batcher(Model(), max_batch=4, max_wait_s=0.01)

  async def scenario():
    real = b._gather

    async def broken():
      raise KeyError("a bug in the worker")

    monkeypatch.setattr(b, "_gather", broken)
    with pytest.raises(KeyError, match="a bug in the worker"):
      await asyncio.wait_for(b(crops(1, 1)), 5)  # fails, does not hang
    monkeypatch.setattr(b, "_gather", real)
    return await asyncio.wait_for(b(crops(1, 3)), 5)

  out = asyncio.run(scenario())
  np.testing.assert_array_equal(out["age"], [3])
  assert "the model worker stopped" in caplog.text
