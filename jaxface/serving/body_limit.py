"""A request body's size limit, applied while it arrives: before the multipart parser spools any of it.

A ``Content-Length`` over the limit is answered 413 at once, unread. A body
without one (chunked) is counted as it streams, and the request is refused
as soon as the count passes the limit. Any answer that starts before the
whole body is in (that 413, or a 400 for a malformed one) says ``Connection:
close``, so the server closes the connection rather than read the rest.

Starlette 1.10 (pinned) ships ``starlette.middleware.body_limit.
RequestBodyLimitMiddleware``. It does not do this job: it checks the size only
when the app reads the body (so the route, and the admission gate, run first
for a ``Content-Length`` it would refuse); its 413 is plain text where every
other refusal of this API is JSON; it sends no ``Connection: close``, so after
a chunked body is cut the connection is left for the server to drain; and a
``Content-Length`` that is not a number is read as none instead of a 400.
"""

from __future__ import annotations

import json

from fastapi import HTTPException


class BodyLimit:
  """ASGI middleware: ``app.add_middleware(BodyLimit, max_bytes=N)``."""

  def __init__(self, app, max_bytes: int):
    self.app, self.max_bytes = app, max_bytes

  def _too_large(self, size: str) -> str:
    return f"request body of {size} is over the limit of {self.max_bytes:,} bytes a request"

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)
    length = dict(scope["headers"]).get(b"content-length")
    if length is not None:
      if not length.isdigit():
        return await reply(send, 400, f"Content-Length {length.decode(errors='replace')!r} is not a number")
      if int(length) > self.max_bytes:
        return await reply(send, 413, self._too_large(f"{int(length):,} bytes"))
    seen, body_in = 0, length == b"0" or (length is None and b"transfer-encoding" not in dict(scope["headers"]))

    async def counted():
      nonlocal seen, body_in
      message = await receive()
      if message["type"] == "http.request":
        seen += len(message.get("body", b""))
        body_in = not message.get("more_body", False)
        if seen > self.max_bytes:  # FastAPI passes an HTTPException from the body's reading on as the response
          raise HTTPException(413, self._too_large(f"over {self.max_bytes:,} bytes (chunked)"))
      return message

    async def closing(message):  # an answer before the whole body (a 413, a 400): the rest is never read
      if not body_in and message["type"] == "http.response.start":
        message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
      await send(message)

    await self.app(scope, counted, closing)


async def reply(send, status: int, detail: str, extra_headers: list[tuple[bytes, bytes]] = ()) -> None:
  """A JSON error answered by the middleware itself, and the connection closed after it (its body is not read)."""
  body = json.dumps({"detail": detail}).encode()
  headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
  await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
  await send({"type": "http.response.body", "body": body})
