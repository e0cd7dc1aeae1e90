"""How many requests may work at once, and how many may be let in at all: counted before a body is read.

A request to a work path is let in (``GateMiddleware``) only while fewer than
``max_active + max_waiting`` are in; past that it is answered 503 at once,
with ``Connection: close``, before any of its body is read: a request that
will be refused never uploads. So at most that many bodies are ever spooled
to disk by the multipart parser (``Limits.max_spooled``). Once its body is
in, a request waits for one of ``max_active`` places (``Gate.place``), first
come first served: a slow upload holds a place in the line, never a place at
work.
"""

from __future__ import annotations

import asyncio
import contextlib

from jaxface.serving.body_limit import reply


class Gate:
  def __init__(self, max_active: int, max_waiting: int):
    self._places, self.max_in, self.inside = asyncio.Semaphore(max_active), max_active + max_waiting, 0

  def admit(self) -> bool:
    if self.inside >= self.max_in:
      return False
    self.inside += 1
    return True

  def leave(self) -> None:
    self.inside -= 1

  @contextlib.asynccontextmanager
  async def place(self):
    async with self._places:
      yield


class GateMiddleware:
  """ASGI middleware: ``app.add_middleware(GateMiddleware, gate=Gate(...), paths=("/v1/predict",))``."""

  def __init__(self, app, gate: Gate, paths: tuple[str, ...]):
    self.app, self.gate, self.paths = app, gate, paths

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http" or scope["path"] not in self.paths:
      return await self.app(scope, receive, send)
    if not self.gate.admit():
      busy = f"busy: {self.gate.inside} requests are in already; try again"
      return await reply(send, 503, busy, [(b"retry-after", b"1")])
    try:
      return await self.app(scope, receive, send)
    finally:
      self.gate.leave()
