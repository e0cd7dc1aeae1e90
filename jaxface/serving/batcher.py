"""Concurrent requests' faces gathered into one model call.

Requests put their face crops on a queue and await the result. One worker
takes the first waiting request, then whatever else arrives within
``max_wait_s`` while the total stays within ``max_batch`` faces (a request
with more faces than that is a call of its own), runs the model once on all
of them in its own thread (the event loop keeps serving), and hands each
request its rows. ``max_batch=0`` turns gathering off: one request per model
call. An error in a call reaches exactly the requests of that call, and is
logged; the worker goes on with the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

import numpy as np


class Batcher:
  def __init__(self, run: Callable[[np.ndarray], dict[str, np.ndarray]], max_batch: int, max_wait_s: float):
    self.run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
    self.calls = 0  # model calls so far (for /v1/model and the benchmark)
    self._queue: asyncio.Queue | None = None
    self._worker: asyncio.Task | None = None
    self._held = None  # a request that would have taken the batch past max_batch: the next batch's first
    self._inflight: list = []  # the requests of the call running now
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jaxface-model")

  async def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
    if not len(crops):
      return {"age": np.zeros(0), "p_female": np.zeros(0)}
    if self._worker is None or self._worker.done():
      self._queue, self._held = asyncio.Queue(), None
      self._worker = asyncio.get_running_loop().create_task(self._serve())
      self._worker.add_done_callback(self._ended)
    done = asyncio.get_running_loop().create_future()
    await self._queue.put((crops, done))
    return await done

  async def _gather(self) -> list:
    """The next call's requests: the first waiting, then those arriving within max_wait_s, up to max_batch faces."""
    loop = asyncio.get_running_loop()
    first, self._held = self._held or await self._queue.get(), None
    batch, n, deadline = [first], len(first[0]), loop.time() + self.max_wait_s
    while self.max_batch and n < self.max_batch:
      try:
        item = self._queue.get_nowait()
      except asyncio.QueueEmpty:
        if (left := deadline - loop.time()) <= 0:
          break
        try:
          item = await asyncio.wait_for(self._queue.get(), left)
        except TimeoutError:
          break
      if n + len(item[0]) > self.max_batch:
        self._held = item
        break
      batch.append(item)
      n += len(item[0])
    return batch

  async def _serve(self) -> None:
    loop = asyncio.get_running_loop()
    while True:
      batch = self._inflight = await self._gather()
      try:
        out = await loop.run_in_executor(self._pool, self.run, np.concatenate([c for c, _ in batch]))
        start = 0
        for crops, done in batch:
          if not done.done():  # its client may have gone
            done.set_result({k: v[start : start + len(crops)] for k, v in out.items()})
          start += len(crops)
      except Exception as e:  # the call's requests get the error; the worker goes on
        logging.exception("model call on %d requests failed", len(batch))
        for _, done in batch:
          if not done.done():
            done.set_exception(e)
      finally:
        self.calls += 1

  def _ended(self, task: asyncio.Task) -> None:
    """The worker stopped (cancelled at shutdown, or a bug): no request may wait for it for ever."""
    error = None if task.cancelled() else task.exception()
    if error is not None:
      logging.error("the model worker stopped: %r; the next request starts another", error)
    waiting = [*self._inflight, *([self._held] if self._held else [])]
    while self._queue is not None and not self._queue.empty():
      waiting.append(self._queue.get_nowait())
    self._held, self._inflight = None, []
    for _, done in waiting:
      if not done.done():
        done.set_exception(error or RuntimeError("the server is shutting down"))

  def close(self) -> None:
    if self._worker is not None:
      self._worker.cancel()
    self._pool.shutdown(wait=False)
