"""The server's memory and disk under inputs built to blow them up, against ``python -m jaxface.serve``'s defaults.

  python benchmarks/serve_memory.py [--model FILE | --workdir DIR] [--requests 16] [--files 16] [--side 6000]

Everything goes to 127.0.0.1 only, and every phase is bounded in time. Phases and targets:
- flood: --requests concurrent requests, each of --files blank --side x --side PNGs (about 100 KB a file, 36 Mpx
  decoded at 6000). Target: every request answered (no kill), the server's peak RSS under 1.5 GB.
- refused before upload: a server with one place and no line (``--max-active 1 --max-waiting 0``), one request
  holding the place while its body trickles in; a second request announces a 140 MB body. Target: its 503 arrives
  before it has sent 1 MB.
- chunked over the limit: a chunked body of up to 1 GB to the default server. Target: 413 with ``Connection:
  close``, the connection closed, and under twice the request limit read.
Writes benchmarks/results/serve_memory_cpu.json (command, commit, host, date, wall time).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import socket
import sys
import threading
import time

import common
import serve as serve_bench
from abuse import RSS, huge_body
from PIL import Image

MB = 2**20


def blank_png(side: int) -> bytes:
  buf = io.BytesIO()
  Image.new("RGB", (side, side)).save(buf, format="PNG")
  return buf.getvalue()


def flood(base: str, pid: int, png: bytes, requests: int, files: int) -> dict:
  import httpx2 as httpx

  def one(_):
    t = time.perf_counter()
    try:
      r = httpx.post(
        f"{base}/v1/predict", files=[("files", (f"{i}.png", png, "image/png")) for i in range(files)], timeout=600
      )
      return r.status_code, time.perf_counter() - t
    except httpx.TransportError as e:
      return type(e).__name__, time.perf_counter() - t

  with RSS(pid) as rss, concurrent.futures.ThreadPoolExecutor(requests) as pool:
    got = list(pool.map(one, range(requests)))
  statuses = [s for s, _ in got]
  return {
    "requests": requests, "files_each": files, "png_bytes": len(png), "sent_mb": round(requests * files * len(png) / MB, 1),
    "statuses": {str(s): statuses.count(s) for s in set(statuses)}, "slowest_s": round(max(t for _, t in got), 1),
    "rss_before_mb": round(rss.before / MB, 1), "rss_peak_mb": round(rss.peak / MB, 1),
  }  # fmt: skip


def refused_before_upload(port: int) -> dict:
  """One request holds the only place (its body trickling in); the next announces 140 MB."""
  head = "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n"
  holder = socket.create_connection(("127.0.0.1", port))
  holder.sendall(head.format(100 * MB).encode() + b"--b")
  stop = threading.Event()

  def trickle():
    while not stop.wait(0.5):
      try:
        holder.sendall(b"-")
      except OSError:
        return

  threading.Thread(target=trickle, daemon=True).start()
  time.sleep(1.0)
  s = socket.create_connection(("127.0.0.1", port))
  s.sendall(head.format(140 * MB).encode())
  s.settimeout(0.01)
  block, sent, answer, t0 = b"\xff" * 64 * 1024, 0, b"", time.perf_counter()
  while b"\r\n\r\n" not in answer and sent < 140 * MB and time.perf_counter() - t0 < 60:
    try:
      answer += s.recv(65536)
      continue
    except TimeoutError:
      pass
    except (ConnectionResetError, BrokenPipeError):
      break
    try:
      s.sendall(block)
      sent += len(block)
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
      pass
  stop.set()
  s.close()
  holder.close()
  status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else None
  return {
    "announced_mb": 140, "status": status, "sent_before_answer_mb": round(sent / MB, 2),
    "connection_close": b"connection: close" in answer.lower(), "seconds": round(time.perf_counter() - t0, 2),
  }  # fmt: skip


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  which = p.add_mutually_exclusive_group()
  which.add_argument("--model", help="a .jaxface file (default: the shipped model)")
  which.add_argument("--workdir")
  p.add_argument("--requests", type=int, default=16)
  p.add_argument("--files", type=int, default=16)
  p.add_argument("--side", type=int, default=6000)
  p.add_argument("--name", default="serve_memory_cpu")
  a = p.parse_args()
  t0 = time.perf_counter()
  import portpicker

  model = ["--workdir", a.workdir] if a.workdir else (["--model", a.model] if a.model else [])
  png, results = blank_png(a.side), {}

  def start(*flags):
    port = portpicker.pick_unused_port()
    cmd = [sys.executable, "-m", "jaxface.serve", *model, "--port", str(port), *flags]
    return serve_bench.start_server([], port, [], cmd=cmd), port

  server, port = start()
  try:
    results["flood"] = flood(f"http://127.0.0.1:{port}", server.pid, png, a.requests, a.files)
    print(json.dumps(results["flood"]), flush=True)
    r = huge_body(port, chunked=True)
    results["chunked"] = {**r, "closed_early": r["bytes_sent"] < r["bytes_offered"]}
    print(json.dumps(results["chunked"]), flush=True)
    limits = json.loads(__import__("httpx2").get(f"http://127.0.0.1:{port}/v1/model").text)["limits"]
  finally:
    server.terminate()
    server.wait(timeout=30)
  server, port = start("--max-active", "1", "--max-waiting", "0")
  try:
    results["refused"] = refused_before_upload(port)
    print(json.dumps(results["refused"]), flush=True)
  finally:
    server.terminate()
    server.wait(timeout=30)
  f, c, r = results["flood"], results["chunked"], results["refused"]
  targets = {
    "flood_all_answered": sum(v for k, v in f["statuses"].items() if k.isdigit()) == a.requests,
    "flood_peak_under_1500mb": f["rss_peak_mb"] < 1500,
    "refused_before_1mb": r["status"] == "503" and r["sent_before_answer_mb"] < 1,
    "chunked_413_closed": c["status"] == "413" and c["bytes_sent"] < 2 * limits["max_body"],
  }
  print(json.dumps(targets))
  meta = common.provenance("serve_memory", t0, model=a.model or a.workdir or "shipped", limits=limits, targets=targets)
  common.write(a.name, [results], meta)


if __name__ == "__main__":
  main()
