"""The HTTP API and its web page.

``POST /v1/predict`` (one or more images, multipart field ``files``): the
records ``predict`` writes, one per face, or a no-face record per image
(``?detect=false``: each image is already a face crop; ``?annotate=true``:
also each image boxed and labelled, as PNG data URLs, which the page shows).
``POST /v1/annotate`` (one image, field ``file``): the image as PNG, each face
boxed and labelled. ``GET /v1/model``: arch, metrics and limits (with
``expose_details``, also the config and the run's provenance: its command,
paths and host).
``GET /healthz``. ``GET /``: the page. ``/docs``: the OpenAPI docs.

Bad input is a 4xx whose ``detail`` names the file and what is wrong (400:
empty, not an image, no file; 413: over the size, pixel or file-count
limit, a body over the request limit refused while it arrives; 408: a body
slower than ``body_s``); the server goes on serving. 503: the model call
failed, or too many requests wait already; 504: no answer within
``answer_s``. At most ``max_active`` requests are at work at once, the rest
wait their turn. Decoding, detection and cropping run in a thread pool, the
model in the batcher's thread: the event loop stays free.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import numbers
from importlib import resources
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from PIL import Image, UnidentifiedImageError

from jaxface import faces
from jaxface.inference.predictor import Predictor
from jaxface.serving.batcher import Batcher
from jaxface.serving.body_limit import BodyLimit
from jaxface.serving.deadline import Deadline
from jaxface.serving.limits import Limits


def public_info(info: dict) -> dict:
  """What anyone may see of the model: no config or provenance (they hold commands, local paths, host details)."""
  metrics = {
    split: {k: v for k, v in m.items() if isinstance(v, numbers.Number)}
    for split, m in (info.get("metrics") or {}).items()
  }
  cal = info.get("calibration") or {}
  calibration = {k: v for k, v in cal.items() if isinstance(v, numbers.Number | str) and k != "workdir"} or None
  keep = ("arch", "image_size", "checkpoint", "step")
  return {**{k: info[k] for k in keep if k in info}, "metrics": metrics, "calibration": calibration}


def _decode(data: bytes, name: str, limits: Limits) -> faces.Photo:
  if not data:
    raise HTTPException(400, f"{name}: empty file (0 bytes)")
  try:
    with Image.open(io.BytesIO(data), formats=faces.FORMATS) as img:
      if img.width * img.height > limits.max_pixels:
        raise HTTPException(
          413, f"{name}: {img.width}x{img.height} is over the limit of {limits.max_pixels:,} pixels an image"
        )
      img.load()
      photo = faces.load_photo(img, name)
  except HTTPException:
    raise
  except UnidentifiedImageError:
    raise HTTPException(400, f"{name}: {faces.NOT_AN_IMAGE}") from None
  except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
    raise HTTPException(400, f"{name}: not a readable image ({type(e).__name__}: {e})") from None
  return photo


class Gate:
  """At most ``max_active`` requests at work; up to ``max_waiting`` more wait their turn, first come first served;
  beyond that a request is refused at once with 503. Only a request whose body is in takes a place, so slow
  uploads never hold one."""

  def __init__(self, max_active: int, max_waiting: int):
    self._places, self.max_waiting, self.waiting = asyncio.Semaphore(max_active), max_waiting, 0

  @contextlib.asynccontextmanager
  async def place(self):
    if self._places.locked() and self.waiting >= self.max_waiting:
      raise HTTPException(503, f"busy: {self.waiting} requests are waiting already; try again", {"Retry-After": "1"})
    self.waiting += 1
    try:
      await self._places.acquire()
    finally:
      self.waiting -= 1
    try:
      yield
    finally:
      self._places.release()


def _png(photo: faces.Photo, records: list[dict]) -> bytes:
  buf = io.BytesIO()
  faces.drawn(photo.image, [r for r in records if r["status"] == "ok"]).save(buf, format="PNG")
  return buf.getvalue()


def create_app(
  predictor: Predictor,
  info: dict,
  *,
  max_batch: int = 64,
  max_wait_ms: float = 5.0,
  limits: Limits | None = None,
  expose_details: bool = False,
) -> FastAPI:
  """``info``: the model (``Predictor.info``); ``GET /v1/model`` shows ``public_info`` of it,
  or all of it with ``expose_details``. ``max_batch=0``: no gathering."""
  limits = limits or Limits()
  batcher = Batcher(predictor.run, max_batch, max_wait_ms / 1000)

  @contextlib.asynccontextmanager
  async def lifespan(app):
    yield
    batcher.close()

  app = FastAPI(
    title="jaxface", summary="Age and gender of the faces in photos.", lifespan=lifespan,
    description=__doc__.split("\n\n")[1],
  )  # fmt: skip
  app.add_middleware(Deadline, body_s=limits.body_s, answer_s=limits.answer_s)
  app.add_middleware(BodyLimit, max_bytes=limits.max_body)  # added last, so outermost: refused before any clock
  app.state.batcher = batcher
  gate = Gate(limits.max_active, limits.max_waiting)
  shown = info if expose_details else public_info(info)

  async def read(upload: UploadFile) -> faces.Photo:
    name = upload.filename or "upload"
    data = await upload.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
      raise HTTPException(413, f"{name}: over the limit of {limits.max_bytes:,} bytes a file")
    return await run_in_threadpool(_decode, data, name, limits)

  async def records(photo: faces.Photo, detect: bool) -> list[dict]:
    found = await run_in_threadpool(predictor.faces, photo, detect)
    if not found:
      return [{"file": photo.file, "status": "no_face"}]
    try:
      out = await batcher(np.stack([pixels for _, pixels in found]))
    except Exception as e:  # the model's failure, not the request's: a 503 with the reason, and the server goes on
      raise HTTPException(503, f"{photo.file}: the model call failed ({type(e).__name__}: {e}); try again") from None
    return predictor.label([rec for rec, _ in found], out)

  @app.post("/v1/predict", summary="One record per face (or one no-face record) for each image")
  async def predict(
    files: Annotated[list[UploadFile], File(description="one or more images")],
    detect: Annotated[bool, Query(description="false: each image is already a face crop")] = True,
    annotate: Annotated[bool, Query(description="also each image boxed and labelled, as a PNG data URL")] = False,
  ) -> dict:
    if len(files) > limits.max_files:
      raise HTTPException(413, f"{len(files)} files: over the limit of {limits.max_files} a request")
    async with gate.place():
      photos = [await read(f) for f in files]  # every file checked before any model work
      found = [await records(photo, detect) for photo in photos]
      out = {"records": [r for recs in found for r in recs]}
      if annotate:
        pngs = [await run_in_threadpool(_png, photo, recs) for photo, recs in zip(photos, found, strict=True)]
        out["annotated"] = ["data:image/png;base64," + base64.b64encode(png).decode() for png in pngs]
      return out

  @app.post(
    "/v1/annotate", summary="The image as PNG, each face boxed and labelled",
    response_class=Response, responses={200: {"content": {"image/png": {}}}},
  )  # fmt: skip
  async def annotate(
    file: Annotated[UploadFile, File(description="one image")],
    detect: Annotated[bool, Query(description="false: the image is already a face crop")] = True,
  ) -> Response:
    async with gate.place():
      photo = await read(file)
      png = await run_in_threadpool(_png, photo, await records(photo, detect))
    return Response(png, media_type="image/png")

  @app.get("/v1/model", summary="Arch, metrics and limits of the model served")
  async def model() -> dict:
    return {
      **shown, "limits": {**dataclasses.asdict(limits), "max_body": limits.max_body}, "model_calls": batcher.calls,
      "batching": {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "model_batch": predictor.batch_size},
    }  # fmt: skip

  @app.get("/healthz", summary="200 while the server serves")
  async def healthz() -> dict:
    return {"status": "ok"}

  page = resources.files("jaxface.serving").joinpath("page.html").read_text()

  @app.get("/", response_class=HTMLResponse, include_in_schema=False)
  async def index() -> str:
    return page

  return app
