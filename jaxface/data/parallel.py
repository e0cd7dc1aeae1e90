"""An ordered map over worker processes, with a bounded number of chunks in flight.

Building a dataset decodes and crops every image; that is CPU work that one
Python thread cannot share across cores. ``multiprocessing.Pool.imap`` would
run ahead of a slow consumer and hold every finished image in memory; here at
most ``2 * workers`` chunks are pending, so memory stays flat however large the
collection. Workers come from a forkserver: a process that has started JAX must
not fork.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator


def default_workers() -> int:
  return max(1, min(len(os.sched_getaffinity(0)), 16))


def _batched(items: Iterable, n: int) -> Iterator[list]:
  it = iter(items)
  while chunk := list(itertools.islice(it, n)):
    yield chunk


def _apply(fn: Callable, chunk: list) -> list:
  return [fn(x) for x in chunk]


def ordered_map(fn: Callable, items: Iterable, *, workers: int | None = None, chunk: int = 32) -> Iterator:
  """``map(fn, items)`` in order, ``fn`` run in ``workers`` processes (in this one when 1). ``fn`` must be picklable."""
  workers = default_workers() if workers is None else workers
  chunks = _batched(items, chunk)
  if workers <= 1:
    for c in chunks:
      yield from _apply(fn, c)
    return
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as ex:
    pending = collections.deque(ex.submit(_apply, fn, c) for c in itertools.islice(chunks, 2 * workers))
    while pending:
      done = pending.popleft().result()
      nxt = next(chunks, None)
      if nxt is not None:
        pending.append(ex.submit(_apply, fn, nxt))
      yield from done
