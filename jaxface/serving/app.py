"""The HTTP API and its web page.

``POST /v1/predict`` (one or more images, multipart field ``files``): the
records ``predict`` writes, one per face, or a no-face record per image
(``?detect=false``: each image is already a face crop; ``?annotate=true``:
also each image boxed and labelled, as JPEG data URLs of at most 1024 px, which the page shows).
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
wait their turn; one past ``max_active + max_waiting`` is refused before its
body is read (``serving.gate``). Each
request's photos are worked one at a time: decoded within a budget of pixels
shared by all requests, reduced to ``DECODE_MAX_SIDE`` while decoding where
the format allows (JPEG), searched for faces, cropped, and let go; boxes are
given in the uploaded image's pixels. Decoding, detection and drawing run in
a thread a core (at most ``max_active``), the model in the batcher's thread:
the event loop stays free.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import dataclasses
import io
import numbers
import os
import threading
from importlib import resources
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import HTMLResponse, Response
from PIL import Image, UnidentifiedImageError

from jaxface import faces
from jaxface.faces import cnn
from jaxface.inference.predictor import Predictor
from jaxface.serving.batcher import Batcher
from jaxface.serving.body_limit import BodyLimit
from jaxface.serving.deadline import Deadline
from jaxface.serving.gate import Gate, GateMiddleware
from jaxface.serving.limits import Limits


def public_info(info: dict) -> dict:
  """What anyone may see of the model: no config or provenance (they hold commands, local paths, host details)."""
  metrics = {
    split: {k: v for k, v in m.items() if isinstance(v, numbers.Number)}
    for split, m in (info.get("metrics") or {}).items()
  }
  cal = info.get("calibration") or {}
  calibration = {k: v for k, v in cal.items() if isinstance(v, numbers.Number | str) and k != "workdir"} or None
  keep = ("arch", "image_size", "checkpoint", "step", "note")
  return {**{k: info[k] for k in keep if k in info}, "metrics": metrics, "calibration": calibration}


DECODE_MAX_SIDE = cnn.DETECT_MAX_SIDE  # a photo is kept at most this large: the detector searches no larger
ANNOTATED_MAX_SIDE = 1024  # an annotated photo in a /v1/predict reply: a JPEG this large at most
WORK_PATHS = ("/v1/predict", "/v1/annotate")  # the requests that take a place (serving.gate)


def _decode(data: bytes, name: str, limits: Limits, budget: PixelBudget) -> tuple[faces.Photo, float]:
  """The photo, decoded within the pixel budget and reduced to DECODE_MAX_SIDE, and the factor back to the upload's
  pixels; 400 or 413 naming the file when it cannot be."""
  if not data:
    raise HTTPException(400, f"{name}: empty file (0 bytes)")
  try:
    with Image.open(io.BytesIO(data), formats=faces.FORMATS) as img:
      pixels = img.width * img.height
      if pixels > limits.max_pixels:
        raise HTTPException(
          413, f"{name}: {img.width}x{img.height} is over the limit of {limits.max_pixels:,} pixels an image"
        )
      with budget.take(pixels):  # only so many decoded pixels at once, across requests
        image, factor = faces.reduced(img, DECODE_MAX_SIDE)
  except HTTPException:
    raise
  except Image.DecompressionBombError as e:  # a header past Pillow's own limit is past ours too
    raise HTTPException(413, f"{name}: over the limit of {limits.max_pixels:,} pixels an image ({e})") from None
  except UnidentifiedImageError:
    raise HTTPException(400, f"{name}: {faces.NOT_AN_IMAGE}") from None
  except (OSError, ValueError, SyntaxError) as e:
    raise HTTPException(400, f"{name}: not a readable image ({type(e).__name__}: {e})") from None
  return faces.Photo(name, image), factor


class PixelBudget:
  """Decoded pixels at once, across requests and threads: a decode waits until its pixels fit (an image of any
  allowed size fits when it is alone)."""

  def __init__(self, pixels: int):
    self.pixels, self.used, self._free = pixels, 0, threading.Condition()

  @contextlib.contextmanager
  def take(self, n: int):
    with self._free:
      self._free.wait_for(lambda: self.used == 0 or self.used + n <= self.pixels)
      self.used += n
    try:
      yield
    finally:
      with self._free:
        self.used -= n
        self._free.notify_all()


def _drawn(photo: faces.Photo, records: list[dict]) -> Image.Image:
  return faces.drawn(photo.image, [r for r in records if r["status"] == "ok"])


def _jpeg_url(photo: faces.Photo, records: list[dict]) -> str:
  image = _drawn(photo, records)
  image.thumbnail((ANNOTATED_MAX_SIDE, ANNOTATED_MAX_SIDE))
  buf = io.BytesIO()
  image.save(buf, format="JPEG", quality=85)
  return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _png(photo: faces.Photo, records: list[dict]) -> bytes:
  buf = io.BytesIO()
  _drawn(photo, records).save(buf, format="PNG")
  return buf.getvalue()


def _in_upload_pixels(records: list[dict], factor: float) -> list[dict]:
  """Boxes found on the reduced photo, in the uploaded image's pixels."""
  if factor == 1.0:
    return records
  return [{**r, "box": [round(v * factor, 1) for v in r["box"]]} if "box" in r else r for r in records]


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
  # The photos' work (decoding, detection, drawing) runs in a thread a core, at most max_active: it is CPU-bound, so
  # more threads only hold more photos at once. Work that a 504 abandoned still holds its thread, so it never runs
  # beside newer requests' work beyond that count.
  workers = min(limits.max_active, os.cpu_count() or 1)
  pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="jaxface-photos")
  budget = PixelBudget(limits.decode_pixels)

  @contextlib.asynccontextmanager
  async def lifespan(app):
    yield
    batcher.close()
    pool.shutdown(wait=False, cancel_futures=True)

  app = FastAPI(
    title="jaxface", summary="Age and gender of the faces in photos.", lifespan=lifespan,
    description=__doc__.split("\n\n")[1],
  )  # fmt: skip
  gate = Gate(limits.max_active, limits.max_waiting)
  app.add_middleware(Deadline, body_s=limits.body_s, answer_s=limits.answer_s)
  app.add_middleware(GateMiddleware, gate=gate, paths=WORK_PATHS)  # let in, or 503, before the body is read
  app.add_middleware(BodyLimit, max_bytes=limits.max_body)  # added last, so outermost: refused before any clock
  app.state.batcher = batcher
  shown = info if expose_details else public_info(info)

  async def in_pool(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

  async def read(upload: UploadFile) -> tuple[faces.Photo, float]:
    name = upload.filename or "upload"
    data = await upload.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
      raise HTTPException(413, f"{name}: over the limit of {limits.max_bytes:,} bytes a file")
    return await in_pool(_decode, data, name, limits, budget)

  async def records(photo: faces.Photo, detect: bool) -> list[dict]:
    found = await in_pool(predictor.faces, photo, detect)
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
    annotate: Annotated[bool, Query(description="also each image boxed and labelled, as a JPEG data URL")] = False,
  ) -> dict:
    if len(files) > limits.max_files:
      raise HTTPException(413, f"{len(files)} files: over the limit of {limits.max_files} a request")
    out = {"records": [], **({"annotated": []} if annotate else {})}
    async with gate.place():
      for f in files:  # one photo at a time: only its reduced copy, then its faces' crops, are held
        photo, factor = await read(f)
        recs = await records(photo, detect)
        if annotate:
          out["annotated"].append(await in_pool(_jpeg_url, photo, recs))
        out["records"] += _in_upload_pixels(recs, factor)
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
      photo, _ = await read(file)
      png = await in_pool(_png, photo, await records(photo, detect))
    return Response(png, media_type="image/png")

  @app.get("/v1/model", summary="Arch, metrics and limits of the model served")
  async def model() -> dict:
    return {
      **shown, "model_calls": batcher.calls,
      "limits": {**dataclasses.asdict(limits), "max_body": limits.max_body, "max_spooled": limits.max_spooled},
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
