"""``python -m jaxface.serve [--workdir DIR | --model FILE] [--host 127.0.0.1] [--port 8000]``

Serves a trained workdir (or a file from ``python -m jaxface.export``) over
HTTP: a REST API (``/v1/predict``, ``/v1/annotate``, ``/v1/model``,
``/healthz``; OpenAPI docs at ``/docs``) and a web page at ``/`` to drop photos
on. Concurrent requests' faces are gathered into one model call (at most
--max-batch faces, waiting at most --max-wait-ms for more). Each request has
deadlines (--body-s, --answer-s), and at most --max-active are at work at
once. Needs the
``serve`` extra: pip install -e '.[serve]'.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from jaxface import cli, faces
from jaxface.faces.detect import DETECTORS
from jaxface.inference.names import CHECKPOINTS
from jaxface.serving.limits import Limits
from jaxface.xla import compile_cache

EXTRA_CONNECTIONS = 32  # beyond the work paths' places and line: /v1/model, /healthz, the page


def _return_freed_memory() -> None:
  """glibc keeps freed heap memory in per-thread arenas, and raises its threshold for mmap to the largest block freed
  (up to 32 MB): a decoded photo's 16 MB blocks (Pillow's) then stay in the process after the photo is gone, in
  each of the photo threads' arenas. A fixed 1 MB threshold maps every large buffer on its own, returned to the
  system when freed, and two arenas bound the rest. No effect where the C library is not glibc."""
  import ctypes

  try:
    mallopt = ctypes.CDLL("libc.so.6").mallopt
  except (OSError, AttributeError):
    return
  m_mmap_threshold, m_arena_max = -3, -8
  mallopt(m_mmap_threshold, 2**20)
  mallopt(m_arena_max, 2)


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.serve", description=__doc__.split("\n\n")[1])
  cli.add_model_flags(p, CHECKPOINTS, DETECTORS)
  p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
  p.add_argument("--port", type=int, default=8000)
  p.add_argument("--max-batch", type=int, default=64, help="faces gathered across requests per call; 0: no gathering")
  p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request may wait for others to join it")
  p.add_argument("--max-active", type=int, default=Limits.max_active, help="requests at work at once; others wait")
  p.add_argument("--max-waiting", type=int, default=Limits.max_waiting, help="requests waiting; more get 503 at once")
  p.add_argument("--answer-s", type=float, default=Limits.answer_s, help="deadline for an answer once the body is in")
  p.add_argument("--body-s", type=float, default=Limits.body_s, help="deadline for a request's body to arrive")
  p.add_argument(
    "--expose-model-details", action="store_true",
    help="GET /v1/model also shows the config and the training run's provenance (command, local paths, host)",
  )  # fmt: skip
  args = p.parse_args(argv)
  _return_freed_memory()
  cli.setup_logging()
  compile_cache.enable()
  try:
    import uvicorn

    from jaxface.serving.app import create_app
  except ImportError as e:
    return cli.error(f"serving needs the serve extra ({e}): pip install -e '.[serve]'")
  from jaxface.inference.predictor import Predictor

  try:
    predictor = Predictor.from_args(args)
    faces.ready(args.detector)  # converted first, if need be: offline, one line saying what to do
  except (FileNotFoundError, ValueError, faces.DetectorError) as e:
    return cli.error(e)
  for n in predictor.shapes:  # each batch shape compiled before the first request
    predictor.run(np.zeros((n, predictor.size, predictor.size, 3), np.uint8))
  faces.detect(np.zeros((64, 64, 3), np.uint8), args.detector)  # the detector's first call, compiled
  limits = Limits(max_active=args.max_active, max_waiting=args.max_waiting, answer_s=args.answer_s, body_s=args.body_s)
  app = create_app(
    predictor, predictor.info, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, limits=limits,
    expose_details=args.expose_model_details,
  )  # fmt: skip
  print(f"serving {predictor.info['arch']} on http://{args.host}:{args.port}/ (API docs: /docs)", file=sys.stderr)
  if note := predictor.info.get("note"):
    print(f"model: {note}", file=sys.stderr)
  # Connections and requests at once, past which uvicorn answers 503 itself: the gate's places and line, and room for
  # GETs. Slow headers are not timed out by uvicorn: on a public address, put a proxy in front (docs/serving.md).
  connections = args.max_active + args.max_waiting + EXTRA_CONNECTIONS
  uvicorn.run(app, host=args.host, port=args.port, log_level="info", limit_concurrency=connections)
  return 0


if __name__ == "__main__":
  cli.run(main)
