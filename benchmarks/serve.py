"""The server under concurrent clients, with request batching on and off.

  python benchmarks/serve.py [--workdir DIR | --model FILE] [--clients 16 64] [--seconds 20] [--polite]
      [--name serve_cpu]

With neither --workdir nor --model, the model jaxface ships.

For each mode, ``python -m jaxface.serve`` starts in its own process on
127.0.0.1, and N clients in this process post images to ``/v1/predict`` as
fast as answers come back (each --clients count in turn), for a bounded time (and at most --max-requests
each). Two kinds of request: the astronaut photo (scikit-image's, one face:
detection, crop and model) and a 200x200 face crop with ``detect=false``
(the model path alone). Batching on: one model call gathers up to
--max-batch faces of concurrent requests (static batch --max-batch); off: one
request per model call, at a static batch of 1. Reports requests/s, faces/s,
p50/p99 latency (of every request, and of those answered), requests refused by
the server's admission limits (429/503, at once), other failures, and faces per
model call. By default a refused client tries again at once; with --polite it
waits the ``Retry-After`` the server sent (jittered by half, so that refused
clients do not come back together), and as long after a connection the server
cut (it refuses before reading a body, so an upload under way breaks off).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import random
import statistics
import subprocess
import sys
import time

import common
import numpy as np
from PIL import Image

MODES = {"on": ("--max-batch", "{max_batch}", "--batch-size", "{max_batch}"), "off": ("--max-batch", "0", "--batch-size", "1")}  # fmt: skip


def jpeg(array: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, format="JPEG", quality=95)
  return buf.getvalue()


def start_server(model: list[str], port: int, flags: list[str], cmd: list[str] | None = None) -> subprocess.Popen:
  """``python -m jaxface.serve`` of ``model`` (its flags: ``--workdir DIR``, ``--model FILE`` or none, the shipped
  one), or ``cmd``, on 127.0.0.1:port, once it answers /healthz."""
  cmd = cmd or [sys.executable, "-m", "jaxface.serve", *model, "--port", str(port), *flags]
  proc = subprocess.Popen(cmd, cwd=common.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  import httpx2 as httpx

  deadline = time.monotonic() + 180
  while time.monotonic() < deadline:
    if proc.poll() is not None:
      raise RuntimeError(f"the server exited: {proc.stderr.read()[-2000:]}")
    try:
      if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
        return proc
    except httpx.TransportError:
      time.sleep(0.2)
  proc.kill()
  raise RuntimeError("the server did not answer /healthz within 180 s")


RETRY_AFTER_S = 1.0  # a polite client's wait after a cut connection, which carries no Retry-After


async def load(
  url: str, body: bytes, detect: bool, clients: int, seconds: float, max_requests: int, polite: bool = False
) -> dict:
  import httpx2 as httpx

  latencies, answered, faces, failures, refused, statuses = [], [], 0, 0, 0, {}
  params = {} if detect else {"detect": "false"}
  rng = random.Random(0)

  async def client(http):
    nonlocal faces, failures, refused
    end = time.monotonic() + seconds
    for _ in range(max_requests):
      if time.monotonic() >= end:
        break
      t = time.perf_counter()
      wait = None
      try:
        r = await http.post(url, params=params, files={"files": ("face.jpg", body, "image/jpeg")})
        status = r.status_code
        if status in (429, 503):
          wait = float(r.headers.get("retry-after", RETRY_AFTER_S))
      except httpx.HTTPError:
        status, wait = None, RETRY_AFTER_S
      latencies.append(time.perf_counter() - t)
      statuses[str(status)] = statuses.get(str(status), 0) + 1
      if status == 200:
        answered.append(latencies[-1])
        faces += sum(rec["status"] == "ok" for rec in r.json()["records"])
      elif status in (429, 503):  # the server's admission limits (--max-active, --max-waiting): refused at once
        refused += 1
      else:
        failures += 1
      if polite and wait is not None:
        await asyncio.sleep(min(wait * rng.uniform(0.5, 1.5), max(end - time.monotonic(), 0)))

  limits = httpx.Limits(max_connections=clients)
  async with httpx.AsyncClient(timeout=60, limits=limits) as http:
    t0 = time.perf_counter()
    await asyncio.gather(*(client(http) for _ in range(clients)))
    wall = time.perf_counter() - t0
  q = statistics.quantiles(latencies, n=100)
  qa = statistics.quantiles(answered, n=100) if len(answered) > 1 else [float("nan")] * 99
  return {
    "requests": len(latencies), "failures": failures, "refused": refused, "faces": faces, "seconds": round(wall, 2),
    "requests_per_s": round(len(latencies) / wall, 1), "faces_per_s": round(faces / wall, 1),
    "latency_p50_ms": round(1000 * q[49], 1), "latency_p99_ms": round(1000 * q[98], 1),
    "answered_p50_ms": round(1000 * qa[49], 1), "answered_p99_ms": round(1000 * qa[98], 1),
    "statuses": statuses,  # "None": no HTTP answer (the connection failed)
  }  # fmt: skip


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  which = p.add_mutually_exclusive_group()
  which.add_argument("--workdir", help="a trained workdir to serve")
  which.add_argument("--model", help="an exported model file (default, with neither: the shipped model)")
  p.add_argument("--clients", type=int, nargs="+", default=[16])
  p.add_argument("--seconds", type=float, default=20, help="per mode and request kind")
  p.add_argument("--max-requests", type=int, default=2000, help="per client, per mode and request kind")
  p.add_argument("--max-batch", type=int, default=16)
  p.add_argument("--polite", action="store_true", help="refused clients wait the server's Retry-After")
  p.add_argument("--port", type=int, default=0, help="0: a free one")
  p.add_argument("--name", default="serve_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  import httpx2 as httpx
  import portpicker
  from skimage import data

  photo = jpeg(data.astronaut())
  crop = jpeg(np.asarray(Image.fromarray(data.astronaut()).crop((150, 40, 330, 220)).resize((200, 200))))
  served = ["--workdir", a.workdir] if a.workdir else ["--model", a.model] if a.model else []
  rows = []
  for mode, flags in MODES.items():
    port = a.port or portpicker.pick_unused_port()
    server = start_server(served, port, [f.format(max_batch=a.max_batch) for f in flags])
    try:
      base = f"http://127.0.0.1:{port}"
      model = httpx.get(f"{base}/v1/model").json()
      for (kind, body, detect), clients in itertools.product(
        (("photo", photo, True), ("crop", crop, False)), a.clients
      ):
        asyncio.run(load(f"{base}/v1/predict", body, detect, 2, 2, 5))  # warm-up
        calls0 = httpx.get(f"{base}/v1/model").json()["model_calls"]
        r = asyncio.run(load(f"{base}/v1/predict", body, detect, clients, a.seconds, a.max_requests, a.polite))
        calls = httpx.get(f"{base}/v1/model").json()["model_calls"] - calls0
        r |= {"batching": mode, "request": kind, "clients": clients, "polite": a.polite, "model_calls": calls,
              "faces_per_call": round(r["faces"] / max(calls, 1), 2), **model["batching"]}  # fmt: skip
        rows.append(r)
        print(json.dumps(r))
    finally:
      server.terminate()
      server.wait(timeout=30)
  ratios = {}
  for kind, clients in itertools.product(("photo", "crop"), a.clients):
    on, off = (
      next(r for r in rows if r["request"] == kind and r["clients"] == clients and r["batching"] == m)
      for m in ("on", "off")
    )
    ratios[f"{kind}_{clients}_clients_faces_per_s_on_vs_off"] = round(on["faces_per_s"] / off["faces_per_s"], 2)
  print(json.dumps(ratios))
  meta = common.provenance(
    "serve", t0, arch=model["arch"], image_size=model["image_size"], workdir=a.workdir,
    model=a.model or (None if a.workdir else "shipped"), polite=a.polite, ratios=ratios,
  )  # fmt: skip
  common.write(a.name, rows, meta)


if __name__ == "__main__":
  main()
