"""Concurrent requests' faces gathered into one model call.

Requests put their face crops on a queue and await the result. One worker
takes the first waiting request, then whatever else arrives within
``max_wait_s``, up to ``max_batch`` faces, runs the model once on all of them
in its own thread (the event loop keeps serving), and hands each request its
rows. ``max_batch=0`` turns gathering off: one request per model call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable

import numpy as np


class Batcher:
  def __init__(self, run: Callable[[np.ndarray], dict[str, np.ndarray]], max_batch: int, max_wait_s: float):
    self.run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
    self.calls = 0  # model calls so far (for /v1/model and the benchmark)
    self._queue: asyncio.Queue | None = None
    self._worker: asyncio.Task | None = None
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jaxface-model")

  async def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
    if not len(crops):
      return {"age": np.zeros(0), "p_female": np.zeros(0)}
    if self._worker is None or self._worker.done():
      self._queue = asyncio.Queue()
      self._worker = asyncio.get_running_loop().create_task(self._serve())
    done = asyncio.get_running_loop().create_future()
    await self._queue.put((crops, done))
    return await done

  async def _serve(self) -> None:
    loop = asyncio.get_running_loop()
    while True:
      batch = [await self._queue.get()]
      n, deadline = len(batch[0][0]), loop.time() + self.max_wait_s
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
        batch.append(item)
        n += len(item[0])
      try:
        out = await loop.run_in_executor(self._pool, self.run, np.concatenate([c for c, _ in batch]))
      except Exception as e:  # the waiting requests get the error; the worker goes on
        for _, done in batch:
          if not done.done():
            done.set_exception(e)
        continue
      finally:
        self.calls += 1
      start = 0
      for crops, done in batch:
        if not done.done():  # its client may have gone
          done.set_result({k: v[start : start + len(crops)] for k, v in out.items()})
        start += len(crops)

  def close(self) -> None:
    if self._worker is not None:
      self._worker.cancel()
    self._pool.shutdown(wait=False)
