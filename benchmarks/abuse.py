"""The server as a user would attack it: fuzzed uploads, a 1 GB body, slow clients, load, and a failing model call.

  python benchmarks/abuse.py --workdir DIR [--uploads 2000] [--slow 200] [--clients 64] [--seconds 60]

Everything goes to 127.0.0.1 only, and every phase is bounded in time.
``python -m jaxface.serve`` runs in its own process with its default limits;
the phases, and their targets:
- fuzz: --uploads generated requests (seeded): truncated, corrupt and
  polyglot images, wrong content types, huge dimensions in tiny files,
  broken multipart, empty and duplicate fields, unicode and path-like file
  names. Target: no answer >= 500; after every 100, a normal request is
  still answered as before it.
- size: a 1 GB body, once with a Content-Length and once chunked. Target:
  413, and the server's RSS grows by less than 50 MB.
- slow: --slow connections sending one byte a second. Target: a normal
  request's median latency within 2 s of its unloaded median.
- load: --clients clients for --seconds on the photo, then on a face crop
  (detect=false). Target: no failure; p50 and p99 recorded.
- fault: a server whose model call raises once (this script's
  ``--fault-server`` mode: ``jaxface.serve`` with the model's ``run``
  wrapped). Target: exactly that call's requests get a 5xx with the reason,
  and the next requests succeed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import socket
import statistics
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

import common
import numpy as np
import serve as serve_bench
from PIL import Image

FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
GIB = 2**30


def encoded(img: Image.Image, fmt: str) -> bytes:
  buf = io.BytesIO()
  img.save(buf, format=fmt)
  return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
  """A valid PNG signature and header for width x height, with one tiny compressed row: a few hundred bytes."""

  def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

  ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int, photo: bytes) -> bytes:
  """A real JPEG whose frame header (SOF0) is rewritten to claim width x height."""
  i = photo.index(b"\xff\xc0")
  return photo[: i + 5] + struct.pack(">HH", height, width) + photo[i + 9 :]


NAMES = [
  "face.jpg", "../../etc/passwd", "..\\..\\windows\\system32\\x.jpg", "/abs/path.png", "名前の写真.jpg",
  "😀" * 60 + ".png", "a\u202egpj.exe", "x" * 5000 + ".jpg", "", "con.jpg", "a;b=c.jpg", 'q"uote.jpg', "ünï cödé.webp",
  "nul\x00byte.jpg", "line\r\nbreak.jpg",
]  # fmt: skip
TYPES = ["image/jpeg", "image/png", "text/html", "application/x-php", "application/octet-stream", "", "image/svg+xml"]


class Fuzzer:
  """Seeded generator of (kind, body bytes, content-type header, query string)."""

  def __init__(self, seed: int, photo: bytes):
    self.rng = random.Random(seed)
    self.photo = photo
    img = Image.open(io.BytesIO(photo)).convert("RGB")
    self.images = {fmt: encoded(img.resize((96, 96)), fmt) for fmt in FORMATS}
    self.images["JPEG_FULL"] = photo

  def part(self, name: str, filename: str | None, ctype: str, data: bytes, boundary: bytes) -> bytes:
    disp = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
    head = f"Content-Disposition: {disp}\r\n" + (f"Content-Type: {ctype}\r\n" if ctype else "")
    return b"--" + boundary + b"\r\n" + head.encode("utf-8", "surrogateescape") + b"\r\n" + data + b"\r\n"

  def body(self, parts: list[tuple], boundary: bytes = b"fuzzboundary", close: bool = True) -> tuple[bytes, str]:
    raw = b"".join(self.part(*p, boundary) for p in parts) + (b"--" + boundary + b"--\r\n" if close else b"")
    return raw, f"multipart/form-data; boundary={boundary.decode()}"

  def image(self) -> bytes:
    return self.images[self.rng.choice([*FORMATS, "JPEG_FULL"])]

  def case(self) -> tuple[str, bytes, str, str]:
    r = self.rng
    kind = r.choice(
      ["truncated", "corrupt", "polyglot", "wrong_type", "huge_dims", "broken_multipart", "fields", "names", "query"]
    )
    name, ctype, query = r.choice(NAMES[:5]), "image/jpeg", ""
    if kind == "truncated":
      img = self.image()
      data = img[: r.randrange(0, len(img))]
    elif kind == "corrupt":
      data = bytearray(self.image())
      for _ in range(r.randrange(1, 50)):
        data[r.randrange(len(data))] = r.randrange(256)
      data = bytes(data)
    elif kind == "polyglot":
      data = r.choice([
        self.images["JPEG"] + b"PK\x03\x04" + os.urandom(200),  # a JPEG that is also a ZIP
        b"GIF89a/*" + os.urandom(20) + b"*/=1;alert(1)//",  # GIF header, JavaScript body
        self.images["PNG"] + b"<?php system($_GET['c']); ?>",
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n" + self.images["JPEG"],
        b"BM" + os.urandom(r.randrange(0, 300)),
        b"RIFF\xff\xff\xff\xffWEBPVP8 " + os.urandom(100),
      ])  # fmt: skip
    elif kind == "wrong_type":
      data, ctype = r.choice([(self.image(), r.choice(TYPES)), (b"hello, not an image", "image/jpeg")])
    elif kind == "huge_dims":
      w, h = r.choice([(100_000, 100_000), (65_000, 65_000), (2**31 - 1, 1), (1, 2**31 - 1), (50_000, 900)])
      data = png_claiming(w, h) if r.random() < 0.5 else jpeg_claiming(min(w, 65535), min(h, 65535), self.photo)
    if kind == "broken_multipart":
      data = self.image()
      variant = r.randrange(7)
      if variant == 0:  # no closing boundary
        body, content_type = self.body([("files", name, ctype, data)], close=False)
      elif variant == 1:  # the header names another boundary
        body, _ = self.body([("files", name, ctype, data)])
        content_type = "multipart/form-data; boundary=other"
      elif variant == 2:  # no boundary at all
        body, content_type = self.body([("files", name, ctype, data)])[0], "multipart/form-data"
      elif variant == 3:  # a part without headers' end
        body, content_type = (
          b"--b\r\nContent-Disposition: form-data; name=files" + data,
          "multipart/form-data; boundary=b",
        )
      elif variant == 4:  # a header line of 100 KB
        body, content_type = self.body([("files", "n" * 100_000, ctype, data)])
      elif variant == 5:  # random bytes
        body, content_type = os.urandom(r.randrange(0, 5000)), "multipart/form-data; boundary=fuzzboundary"
      else:  # not multipart at all
        body, content_type = data, r.choice(["image/jpeg", "application/json", "text/plain"])
      return kind, body, content_type, query
    if kind == "fields":
      variant = r.randrange(5)
      parts = [
        [],  # no field
        [("files", name, ctype, b"")],  # an empty file
        [("files", name, ctype, self.image()), ("files", name, ctype, self.image())],  # the same name twice
        [("files", None, "", b"just a form value")],  # a value, not a file
        [("file", name, ctype, self.image())],  # the other endpoint's field
      ][variant]
      body, content_type = self.body(parts)
      return kind, body, content_type, query
    if kind == "names":
      data, name = self.image(), r.choice(NAMES)
    if kind == "query":
      data = self.image()
      query = r.choice(["detect=maybe", "annotate=2", "detect=false&detect=true", "x=" + "y" * 5000, "detect=%00"])
    body, content_type = self.body([("files", name, ctype, data)])
    return kind, body, content_type, query


class RSS:
  """The server's resident memory, sampled every 20 ms while in the ``with`` block: ``before`` and ``peak`` (bytes)."""

  def __init__(self, pid: int):
    self.pid = pid

  def now(self) -> int:
    for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")

  def __enter__(self):
    self.before = self.peak = self.now()
    self.done = threading.Event()

    def sample():
      while not self.done.wait(0.02):
        try:
          self.peak = max(self.peak, self.now())
        except (OSError, RuntimeError):  # the process has ended (a zombie has no VmRSS)
          return

    self.thread = threading.Thread(target=sample, daemon=True)
    self.thread.start()
    return self

  def __exit__(self, *exc):
    self.done.set()
    self.thread.join()


def normal(url: str, photo: bytes, timeout: float = 60) -> tuple[float, dict | None, int]:
  import httpx2 as httpx

  t = time.perf_counter()
  r = httpx.post(url, files={"files": ("astronaut.jpg", photo, "image/jpeg")}, timeout=timeout)
  return time.perf_counter() - t, (r.json() if r.status_code == 200 else None), r.status_code


def same_answer(a: dict | None, b: dict) -> bool:
  if a is None or len(a["records"]) != len(b["records"]):
    return False
  return all(
    x["box"] == y["box"] and abs(x["age"] - y["age"]) < 0.05 and x["gender"] == y["gender"]
    for x, y in zip(a["records"], b["records"], strict=True)
  )


def fuzz(base: str, photo: bytes, uploads: int, seed: int) -> dict:
  import httpx2 as httpx

  _, reference, _ = normal(f"{base}/v1/predict", photo)
  gen = Fuzzer(seed, photo)
  by_kind, server_errors, checks_failed, transport = {}, [], 0, 0
  with httpx.Client(timeout=60) as http:
    for i in range(uploads):
      kind, body, content_type, query = gen.case()
      endpoint = "/v1/annotate" if i % 10 == 9 else "/v1/predict"
      try:
        r = http.post(f"{base}{endpoint}?{query}", content=body, headers={"content-type": content_type})
        status = r.status_code
      except httpx.HTTPError as e:  # the server closed the connection: counted apart, never as a pass
        status, r = f"transport:{type(e).__name__}", None
        transport += 1
      counts = by_kind.setdefault(kind, {})
      counts[str(status)] = counts.get(str(status), 0) + 1
      if isinstance(status, int) and status >= 500:
        server_errors.append({"i": i, "kind": kind, "status": status, "body": r.text[:300]})
      if (i + 1) % 100 == 0:
        checks_failed += not same_answer(normal(f"{base}/v1/predict", photo)[1], reference)
  return {
    "uploads": uploads, "seed": seed, "responses_5xx": len(server_errors), "transport_errors": transport,
    "normal_checks": uploads // 100, "normal_checks_failed": checks_failed, "by_kind": by_kind,
    "server_errors": server_errors[:20],
  }  # fmt: skip


def huge_body(port: int, chunked: bool, total: int = GIB) -> dict:
  """Sends up to ``total`` bytes of one multipart file, reading the answer as it comes; stops at the answer."""
  s = socket.create_connection(("127.0.0.1", port))
  s.settimeout(0.001)
  head = b"--b\r\nContent-Disposition: form-data; name=files; filename=big.jpg\r\nContent-Type: image/jpeg\r\n\r\n"
  framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
  s.sendall(
    f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n{framing}\r\n".encode()
  )
  block = b"\xff" * 2**20
  sent, answer, t0 = 0, b"", time.perf_counter()
  first = head
  while sent < total and b"\r\n\r\n" not in answer and time.perf_counter() - t0 < 120:
    data = first + block
    first = b""
    try:
      s.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
      sent += len(data)
    except (BrokenPipeError, ConnectionResetError):
      break
    except TimeoutError:
      pass
    try:
      answer += s.recv(65536)
    except TimeoutError:
      pass
    except ConnectionResetError:
      break
  s.settimeout(10)
  try:
    while b"\r\n\r\n" not in answer and (more := s.recv(65536)):
      answer += more
  except (TimeoutError, ConnectionResetError):
    pass
  s.close()
  status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else None
  return {"framing": "chunked" if chunked else "content-length", "bytes_offered": total, "bytes_sent": sent,
          "status": status, "answer": answer.split(b"\r\n\r\n", 1)[-1][:200].decode(errors="replace"),
          "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip


def slow_clients(port: int, url: str, photo: bytes, n: int, seconds: float) -> dict:
  unloaded = [normal(url, photo)[0] for _ in range(10)]
  socks = []
  for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 100000\r\n\r\n")  # fmt: skip
    socks.append(s)
  stop = threading.Event()

  def trickle():
    while not stop.wait(1.0):
      for s in socks:
        try:
          s.sendall(b"-")
        except OSError:
          pass

  thread = threading.Thread(target=trickle, daemon=True)
  thread.start()
  loaded, statuses, end = [], [], time.monotonic() + seconds
  while time.monotonic() < end:
    t, _, status = normal(url, photo)
    loaded.append(t)
    statuses.append(status)
  stop.set()
  thread.join()
  for s in socks:
    s.close()
  u, lo = statistics.median(unloaded), statistics.median(loaded)
  return {
    "slow_connections": n, "seconds": seconds, "unloaded_median_s": round(u, 3), "loaded_median_s": round(lo, 3),
    "loaded_max_s": round(max(loaded), 3), "loaded_requests": len(loaded), "loaded_not_200": sum(s != 200 for s in statuses),
    "within_2s_of_unloaded": lo <= u + 2,
  }  # fmt: skip


def fault(workdir: str, port: int, crop: bytes) -> dict:
  """A server whose model call raises once, when a flag file appears; 8 requests then, 8 after."""
  import httpx2 as httpx

  flag = Path(f"/tmp/jaxface-abuse-fault-{port}")
  flag.unlink(missing_ok=True)
  cmd = [sys.executable, __file__, "--fault-server", str(flag), "--workdir", workdir, "--port", str(port)]
  server = serve_bench.start_server([], port, [], cmd=cmd)
  url = f"http://127.0.0.1:{port}/v1/predict?detect=false"

  async def burst(n):
    async with httpx.AsyncClient(timeout=60) as http:
      rs = await asyncio.gather(*(http.post(url, files={"files": (f"{i}.jpg", crop, "image/jpeg")}) for i in range(n)))
    return [(r.status_code, r.json().get("detail")) for r in rs]

  try:
    asyncio.run(burst(2))  # warm
    calls0 = httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["model_calls"]
    flag.touch()
    during = asyncio.run(burst(8))
    after = asyncio.run(burst(8))
    calls = httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["model_calls"] - calls0
  finally:
    server.terminate()
    server.wait(timeout=30)
    flag.unlink(missing_ok=True)
  failed = [d for s, d in during if s != 200]
  return {
    "requests_during": len(during), "failed_during": len(failed), "statuses_during": sorted({s for s, _ in during}),
    "reasons": sorted(set(failed)), "after_all_200": all(s == 200 for s, _ in after), "model_calls": calls,
    "every_failure_a_5xx_with_the_reason": all(s >= 500 and "injected" in (d or "") for s, d in during if s != 200),
  }  # fmt: skip


def fault_server(flag: str, argv: list[str]) -> int:
  """``jaxface.serve``, its model's run raising once when ``flag`` exists (the flag is removed as it fires)."""
  from jaxface import serve
  from jaxface.inference.predictor import Predictor

  run = Predictor.run

  def failing_once(self, crops):
    if os.path.exists(flag):
      os.unlink(flag)
      raise RuntimeError("injected fault: the model call failed on purpose")
    return run(self, crops)

  Predictor.run = failing_once
  return serve.main(argv)


def main() -> None:
  if len(sys.argv) > 2 and sys.argv[1] == "--fault-server":
    sys.exit(fault_server(sys.argv[2], sys.argv[3:]))
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, help="a trained workdir to serve")
  p.add_argument("--uploads", type=int, default=2000)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--slow", type=int, default=200, help="connections sending a byte a second")
  p.add_argument("--slow-seconds", type=float, default=30)
  p.add_argument("--clients", type=int, default=64)
  p.add_argument("--seconds", type=float, default=60, help="load, per request kind")
  p.add_argument("--name", default="abuse_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  import portpicker
  from skimage import data

  photo = serve_bench.jpeg(data.astronaut())
  crop = serve_bench.jpeg(np.asarray(Image.fromarray(data.astronaut()).crop((150, 40, 330, 220)).resize((200, 200))))
  port = portpicker.pick_unused_port()
  server = serve_bench.start_server(["--workdir", a.workdir], port, [])
  base, results = f"http://127.0.0.1:{port}", {}
  try:
    import httpx2 as httpx

    model = httpx.get(f"{base}/v1/model").json()
    results["fuzz"] = fuzz(base, photo, a.uploads, a.seed)
    print(json.dumps({k: v for k, v in results["fuzz"].items() if k != "by_kind"}), flush=True)
    results["size"] = []
    for chunked in (False, True):
      with RSS(server.pid) as rss:
        r = huge_body(port, chunked)
      r |= {"rss_before_mb": round(rss.before / 2**20, 1), "rss_growth_mb": round((rss.peak - rss.before) / 2**20, 1)}
      results["size"].append(r)
      print(json.dumps(r), flush=True)
    results["slow"] = slow_clients(port, f"{base}/v1/predict", photo, a.slow, a.slow_seconds)
    print(json.dumps(results["slow"]), flush=True)
    results["load"] = []
    for kind, body, detect in (("photo", photo, True), ("crop", crop, False)):
      asyncio.run(serve_bench.load(f"{base}/v1/predict", body, detect, 2, 2, 5))  # warm-up
      r = asyncio.run(serve_bench.load(f"{base}/v1/predict", body, detect, a.clients, a.seconds, 10**6))
      results["load"].append({"request": kind, "clients": a.clients, **r})
      print(json.dumps(results["load"][-1]), flush=True)
    after, _, status = normal(f"{base}/v1/predict", photo)
    results["healthy_after"] = status == 200
  finally:
    server.terminate()
    server.wait(timeout=30)
  results["fault"] = fault(a.workdir, portpicker.pick_unused_port(), crop)
  print(json.dumps(results["fault"]), flush=True)
  size_ok = all(r["status"] == "413" and r["rss_growth_mb"] < 50 for r in results["size"])
  targets = {
    "fuzz_no_5xx": results["fuzz"]["responses_5xx"] == 0 and results["fuzz"]["normal_checks_failed"] == 0,
    "size_413_under_50mb": size_ok,
    "slow_within_2s": results["slow"]["within_2s_of_unloaded"],
    "load_no_failure": all(r["failures"] == 0 for r in results["load"]),
    "fault_contained": results["fault"]["every_failure_a_5xx_with_the_reason"] and results["fault"]["after_all_200"]
    and results["fault"]["failed_during"] > 0,
  }  # fmt: skip
  print(json.dumps(targets))
  meta = common.provenance(
    "abuse", t0, arch=model["arch"], image_size=model["image_size"], workdir=a.workdir, limits=model["limits"],
    batching=model["batching"], targets=targets,
  )  # fmt: skip
  common.write(a.name, [results], meta)


if __name__ == "__main__":
  main()
