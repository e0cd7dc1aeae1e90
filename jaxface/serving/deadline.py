"""Deadlines for a request: one for its body to arrive, one for its answer once the body is in.

A body still arriving after ``body_s`` is answered 408 and its connection
closed: a client sending a byte a second holds a connection, never a worker.
An answer not started ``answer_s`` after the body is in is answered 504 and
the request's work is cancelled (a model call it joined still serves the
others). A request without a body (GET) has only the answer deadline.
"""

from __future__ import annotations

import asyncio
import contextlib

from jaxface.serving.body_limit import reply


class Deadline:
  """ASGI middleware: ``app.add_middleware(Deadline, body_s=60, answer_s=30)``."""

  def __init__(self, app, body_s: float, answer_s: float):
    self.app, self.body_s, self.answer_s = app, body_s, answer_s

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)
    headers = dict(scope["headers"])
    body_in = asyncio.Event()
    if b"content-length" not in headers and b"transfer-encoding" not in headers:
      body_in.set()
    started = False

    async def tracked_receive():
      message = await receive()
      if message["type"] != "http.request" or not message.get("more_body", False):
        body_in.set()
      return message

    async def tracked_send(message):
      nonlocal started
      started = started or message["type"] == "http.response.start"
      await send(message)

    task = asyncio.ensure_future(self.app(scope, tracked_receive, tracked_send))
    arrived = asyncio.ensure_future(body_in.wait())
    try:
      await asyncio.wait({task, arrived}, timeout=self.body_s, return_when=asyncio.FIRST_COMPLETED)
      if not task.done() and body_in.is_set():
        await asyncio.wait({task}, timeout=self.answer_s)
      late = not task.done()
    finally:
      arrived.cancel()
      if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
          await task
    if not late:
      return task.result()
    if started:  # the answer had begun: nothing more can be said on this connection
      return None
    if body_in.is_set():
      return await reply(send, 504, f"not answered within {self.answer_s:g} s of the request arriving; try again")
    return await reply(send, 408, f"the request body did not arrive within {self.body_s:g} s")
