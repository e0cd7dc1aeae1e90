"""Export and serving: the exported file against the workdir, the REST API on real photos and bad input."""

import concurrent.futures
import contextlib
import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
skdata = pytest.importorskip("skimage.data")

from fastapi.testclient import TestClient  # noqa: E402

from jaxface import Predictor  # noqa: E402
from jaxface.serving.app import Limits, create_app  # noqa: E402


def jpeg(array: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, format="JPEG", quality=95)
  return buf.getvalue()


@pytest.fixture(scope="module")
def photos():
  return {"astronaut.jpg": jpeg(skdata.astronaut()), "cat.jpg": jpeg(skdata.chelsea())}


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
  from jaxface import export

  out = tmp_path_factory.mktemp("export") / "model.jaxface"
  assert export.main(["--workdir", str(trained), "--out", str(out)]) == 0
  return out


@pytest.fixture(scope="module")
def client(trained):

  predictor = Predictor.from_workdir(trained, batch_size=4)
  info = predictor.info
  app = create_app(predictor, info, limits=Limits(max_files=3, max_bytes=200_000, max_pixels=1_000_000))
  with TestClient(app) as c:
    yield c


def test_exported_model_predicts_as_the_workdir_without_jaxface_models(trained, exported, photos, tmp_path):
  """The export equals the in-process model (1e-5) on the astronaut and on random crops, batch sizes 1 and 5."""
  (tmp_path / "astronaut.jpg").write_bytes(photos["astronaut.jpg"])
  code = f"""
import json, sys
import numpy as np
from jaxface import Predictor
p = Predictor.from_export({str(exported)!r}, batch_size=4)
rng = np.random.default_rng(0)
crops = rng.integers(0, 256, (5, p.size, p.size, 3), dtype=np.uint8)
out = {{k: v.tolist() for k, v in p.run(crops).items()}}
one = {{k: v.tolist() for k, v in p.run(crops[:1]).items()}}
recs = p.predict({str(tmp_path / "astronaut.jpg")!r})
print(json.dumps({{"out": out, "one": one, "recs": recs, "models": "jaxface.models" in sys.modules}}))
"""
  res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert res.returncode == 0, res.stderr[-3000:]
  got = json.loads(res.stdout.strip().splitlines()[-1])
  assert got["models"] is False  # loading and running the export did not import jaxface's model code
  ref = Predictor.from_workdir(trained, batch_size=4)
  crops = np.random.default_rng(0).integers(0, 256, (5, ref.size, ref.size, 3), dtype=np.uint8)
  want = ref.run(crops)
  for k in ("age", "p_female"):
    np.testing.assert_allclose(got["out"][k], want[k], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["one"][k], want[k][:1], rtol=1e-5, atol=1e-5)
  (rec,) = got["recs"]
  (want_rec,) = ref.predict(tmp_path / "astronaut.jpg")
  assert rec["box"] == want_rec["box"] and rec["age"] == pytest.approx(want_rec["age"], abs=0.011)


def test_export_of_a_missing_workdir_and_a_bad_file_say_what_is_wrong(tmp_path, capsys):
  from jaxface import export
  from jaxface.inference.exported import ExportedModel

  assert export.main(["--workdir", str(tmp_path / "nope"), "--out", str(tmp_path / "m.jaxface")]) == 2
  assert "nope" in capsys.readouterr().err
  (tmp_path / "bad.jaxface").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="bad.jaxface is not a jaxface export"):
    ExportedModel(tmp_path / "bad.jaxface")


def test_a_float16_export_carrying_the_detector_labels_offline_as_the_default_model(
  trained, exported, photos, tmp_path, monkeypatch
):
  """--weights float16 --with-detector: about half the float32 file (the zip holds the detector too), outputs
  within float16's rounding of the workdir's; as the shipped model, with an empty cache and no package index, it
  converts the detector it carries and labels the astronaut."""
  from jaxface import export, shipped

  f32, f16 = exported, tmp_path / "f16.jaxface"
  assert export.main(["--workdir", str(trained), "--out", str(f16), "--weights", "float16", "--with-detector"]) == 0
  import zipfile

  with zipfile.ZipFile(f16) as z:
    assert z.getinfo(shipped.DETECTOR).file_size > 100_000 and json.loads(z.read("meta.json"))["weights"] == "float16"
  rng = np.random.default_rng(0)
  a, b = Predictor.from_export(f32), Predictor.from_export(f16)
  crops = rng.integers(0, 256, (4, a.size, a.size, 3), dtype=np.uint8)
  got, want = b.run(crops), a.run(crops)
  assert 0 < np.abs(got["age"] - want["age"]).max() < 0.05 and np.abs(got["p_female"] - want["p_female"]).max() < 5e-3
  (tmp_path / "astronaut.jpg").write_bytes(photos["astronaut.jpg"])
  env = {"JAXFACE_CACHE": str(tmp_path / "empty-cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
  code = f"""
import json
from jaxface import Predictor, shipped
shipped.MODEL = __import__("pathlib").Path({str(f16)!r})
print(json.dumps(Predictor.shipped().predict({str(tmp_path / "astronaut.jpg")!r})))
"""
  import os

  res = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
  )
  assert res.returncode == 0, res.stderr[-3000:]
  (rec,) = json.loads(res.stdout.strip().splitlines()[-1])
  assert rec["status"] == "ok" and (tmp_path / "empty-cache" / "detector").is_dir()


def test_damaged_exports_are_refused_in_one_line(trained, exported, tmp_path):
  """A meta.json that is not an object, has no image size, or inflates past its cap (a zip bomb); a forward pass
  that is not one; a size that does not match the forward's."""
  import zipfile

  from jaxface.inference.exported import FORWARD, META, ExportedModel

  with zipfile.ZipFile(exported) as z:
    meta, forward = json.loads(z.read(META)), z.read(FORWARD)

  def write(name, entries):
    with zipfile.ZipFile(tmp_path / name, "w", compression=zipfile.ZIP_DEFLATED) as z:
      for k, v in entries.items():
        z.writestr(k, v)
    return tmp_path / name

  cases = {
    "list.jaxface": ({META: "[]", FORWARD: forward}, "export format 'list'"),
    "nosize.jaxface": ({META: json.dumps({k: v for k, v in meta.items() if k != "image_size"}), FORWARD: forward}, "no image size"),
    "bomb.jaxface": ({META: json.dumps(meta) + " " * (2**20 + 1), FORWARD: forward}, "would inflate to"),
    "forward.jaxface": ({META: json.dumps(meta), FORWARD: b"garbage" * 100}, "cannot be read"),
    "size.jaxface": ({META: json.dumps({**meta, "image_size": meta["image_size"] * 2}), FORWARD: forward}, "takes"),
  }  # fmt: skip
  for name, (entries, why) in cases.items():
    with pytest.raises(ValueError, match=why):
      ExportedModel(write(name, entries))


def test_predict_astronaut_and_cat(client, photos):
  r = client.post("/v1/predict", files=[("files", (n, photos[n], "image/jpeg")) for n in ("astronaut.jpg", "cat.jpg")])
  assert r.status_code == 200, r.text
  recs = r.json()["records"]
  assert [(x["file"], x["status"]) for x in recs] == [("astronaut.jpg", "ok"), ("cat.jpg", "no_face")]
  face = recs[0]
  x, y, w, h = face["box"]
  assert 180 < x + w / 2 < 270 and 70 < y + h / 2 < 160  # her face
  assert face["gender"] in ("male", "female") and 0 <= face["p_female"] <= 1 and face["age"] > 0


def test_annotate_returns_a_png_of_the_photo(client, photos):
  r = client.post("/v1/annotate", files={"file": ("astronaut.jpg", photos["astronaut.jpg"], "image/jpeg")})
  assert r.status_code == 200 and r.headers["content-type"] == "image/png"
  img = Image.open(io.BytesIO(r.content))
  assert img.format == "PNG" and img.size == (512, 512)
  assert np.abs(np.asarray(img.convert("RGB"), float) - skdata.astronaut()).max() > 100  # a box was drawn


def test_model_health_page_and_docs(client, trained):
  m = client.get("/v1/model").json()
  assert m["arch"] == "custom" and m["image_size"] == 32 and m["limits"]["max_files"] == 3
  assert "config" not in m and "provenance" not in m and str(trained) not in json.dumps(m)  # no paths, no command
  assert client.get("/healthz").json() == {"status": "ok"}
  page = client.get("/")
  assert page.status_code == 200 and 'id="files"' in page.text and "http" not in page.text.split("<script>")[1]
  assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
  "files, status, detail",
  [
    ([("files", ("empty.jpg", b"", "image/jpeg"))], 400, "empty.jpg: empty file"),
    ([("files", ("notes.txt", b"hello, not an image", "text/plain"))], 400, "notes.txt: not a readable image"),
    ([("files", ("cut.jpg", None, "image/jpeg"))], 400, "cut.jpg: not a readable image"),
    ([("files", ("big.bmp", None, "image/bmp"))], 413, "big.bmp: over the limit of 200,000 bytes"),
    ([("files", ("wide.png", None, "image/png"))], 413, "wide.png: 2000x600 is over the limit of 1,000,000 pixels"),
    ([("files", (f"{i}.jpg", None, "image/jpeg")) for i in range(4)], 413, "4 files: over the limit of 3"),
    (
      [("files", ("page.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "image/eps"))],
      400,
      "page.eps: not a readable image (not JPEG, PNG, WebP or BMP)",
    ),
    ([("files", ("anim.gif", None, "image/gif"))], 400, "anim.gif: not a readable image (not JPEG, PNG, WebP or BMP)"),
    ([("files", ("huge.jpg", b"x" * 700_000, "image/jpeg"))], 413, "request body of"),
    ([], 422, "files"),
  ],
  ids=["empty", "text", "truncated", "over-size", "over-pixels", "too-many", "eps", "gif", "over-body", "no-file"],
)
def test_bad_input_is_a_4xx_naming_the_file_and_the_server_goes_on(client, photos, files, status, detail):
  fill = {
    "cut.jpg": photos["astronaut.jpg"][:2000],
    "big.bmp": b"BM" + bytes(250_000),
    "wide.png": (lambda b: Image.new("RGB", (2000, 600)).save(b, format="PNG") or b.getvalue())(io.BytesIO()),
    "anim.gif": (lambda b: Image.new("RGB", (40, 40)).save(b, format="GIF") or b.getvalue())(io.BytesIO()),
  }
  files = [(k, (n, fill.get(n, photos["astronaut.jpg"]) if body is None else body, t)) for k, (n, body, t) in files]
  r = client.post("/v1/predict", files=files) if files else client.post("/v1/predict")
  assert r.status_code == status, r.text
  assert detail in json.dumps(r.json()["detail"])
  ok = client.post("/v1/predict", files={"files": ("astronaut.jpg", photos["astronaut.jpg"], "image/jpeg")})
  assert ok.status_code == 200 and ok.json()["records"][0]["status"] == "ok"


def test_model_details_only_when_asked(trained):

  predictor = Predictor.from_workdir(trained, batch_size=4)
  info = predictor.info
  with TestClient(create_app(predictor, info, expose_details=True)) as c:
    m = c.get("/v1/model").json()
  assert m["config"]["arch"] == "custom" and m["provenance"]["wall_s"] > 0


def test_a_chunked_body_over_the_limit_is_refused_while_it_arrives(client):
  """No Content-Length: the body is counted as it streams, and refused once past the limit.

  (The test client gathers the whole body before the app sees it: that the rest is never read can only be
  seen against a real server.)
  """

  def chunks():
    for _ in range(100):  # 100 x 64 KiB would be 6.4 MB; the limit is 3 x 200 kB + 64 KiB
      yield b"x" * 2**16

  r = client.post("/v1/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
  assert r.status_code == 413 and "over the limit" in r.json()["detail"] and "(chunked)" in r.json()["detail"]


def test_the_serve_command_brings_the_page_up(trained):
  """`python -m jaxface.serve --workdir DIR`, as the README says: the page, the health check, then a clean stop."""
  import httpx2 as httpx
  import portpicker

  port = portpicker.pick_unused_port()
  cmd = [sys.executable, "-m", "jaxface.serve", "--workdir", str(trained), "--port", str(port), "--batch-size", "4"]
  server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  try:
    deadline, up = time.monotonic() + 120, None
    while up is None and time.monotonic() < deadline and server.poll() is None:
      try:
        up = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
      except httpx.TransportError:
        time.sleep(0.2)
    assert up is not None and up.json() == {"status": "ok"}, server.stderr.read()[-2000:] if server.poll() else ""
    page = httpx.get(f"http://127.0.0.1:{port}/")
    assert page.status_code == 200 and "<title>jaxface</title>" in page.text
  finally:
    server.terminate()
    server.wait(timeout=30)


def test_one_request_gives_the_records_and_the_annotated_image(client, photos):
  """The page's one request: ``?annotate=true`` adds each image boxed and labelled, as a JPEG data URL."""
  import base64

  files = [("files", (n, photos[n], "image/jpeg")) for n in ("astronaut.jpg", "cat.jpg")]
  calls = client.get("/v1/model").json()["model_calls"]
  r = client.post("/v1/predict", params={"annotate": "true"}, files=files)
  assert r.status_code == 200, r.text
  got = r.json()
  assert [x["status"] for x in got["records"]] == ["ok", "no_face"] and len(got["annotated"]) == 2
  assert client.get("/v1/model").json()["model_calls"] == calls + 1  # the model ran once, for the one face
  head, data = got["annotated"][0].split(",", 1)
  img = Image.open(io.BytesIO(base64.b64decode(data)))
  assert head == "data:image/jpeg;base64" and img.format == "JPEG" and img.size == (512, 512)
  assert np.abs(np.asarray(img.convert("RGB"), float) - skdata.astronaut()).max() > 100  # a box was drawn
  assert "annotated" not in client.post("/v1/predict", files=files[:1]).json()


class _Slow:
  """A predictor whose detection takes ``seconds`` for a file named slow*."""

  def __init__(self, predictor, seconds: float):
    self._p, self.seconds = predictor, seconds

  def faces(self, photo, detect):
    if photo.file.startswith("slow"):
      time.sleep(self.seconds)
    return self._p.faces(photo, detect)

  def __getattr__(self, name):
    return getattr(self._p, name)


def test_an_answer_past_its_deadline_is_a_504_and_the_server_goes_on(trained, photos):

  predictor = Predictor.from_workdir(trained, batch_size=4)
  info = predictor.info
  astronaut = {"files": ("astronaut.jpg", photos["astronaut.jpg"], "image/jpeg")}
  with TestClient(create_app(predictor, info)) as c:
    assert c.post("/v1/predict", files=astronaut).status_code == 200  # compiled first: not the deadline's time
  with TestClient(create_app(_Slow(predictor, 8.0), info, limits=Limits(answer_s=4.0))) as c:
    start = time.monotonic()
    r = c.post("/v1/predict", files={"files": ("slow.jpg", photos["astronaut.jpg"], "image/jpeg")})
    assert r.status_code == 504 and "not answered within 4 s" in r.json()["detail"]
    assert time.monotonic() - start < 6  # answered at the deadline, not when the work ended (8 s)
    # The server goes on (a face crop: the model alone, well within the deadline even on a loaded machine).
    crop = {"files": ("face.jpg", jpeg(skdata.astronaut()[40:220, 150:330]), "image/jpeg")}
    ok = c.post("/v1/predict", params={"detect": "false"}, files=crop)
    assert ok.status_code == 200 and ok.json()["records"][0]["status"] == "ok"


def test_the_gate_keeps_order_and_refuses_past_its_queue():
  """One place and one waiting: the second request waits for the first, the third is not let in (503 before its
  body is read: tests/test_abuse.py), and once the line empties a request is let in again."""
  import asyncio

  from jaxface.serving.gate import Gate

  async def scenario():
    gate, order = Gate(max_active=1, max_waiting=1), []
    release = asyncio.Event()

    async def request(name, hold):
      if not gate.admit():
        return False
      try:
        async with gate.place():
          order.append(name)
          if hold:
            await release.wait()
      finally:
        gate.leave()
      return True

    first = asyncio.create_task(request("first", True))
    await asyncio.sleep(0)
    second = asyncio.create_task(request("second", False))
    await asyncio.sleep(0)
    refused = not await request("third", False)
    assert order == ["first"] and gate.inside == 2
    release.set()
    await asyncio.gather(first, second)
    assert await request("fourth", False)  # the line emptied: let in again
    return order, refused

  order, refused = asyncio.run(scenario())
  assert order == ["first", "second", "fourth"] and refused


def test_a_slow_body_is_a_408_and_never_holds_up_a_normal_request(trained, photos):
  """Against a real server: 20 clients sending a byte a second, and a normal request still answered."""
  import socket
  import threading

  import httpx2 as httpx
  import portpicker
  import uvicorn

  predictor = Predictor.from_workdir(trained, batch_size=4)
  info = predictor.info
  port = portpicker.pick_unused_port()
  app = create_app(predictor, info, limits=Limits(body_s=3.0, max_active=2))
  server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  slow = []
  try:
    while not server.started:
      time.sleep(0.05)
    files = {"files": ("astronaut.jpg", photos["astronaut.jpg"], "image/jpeg")}
    url = f"http://127.0.0.1:{port}/v1/predict"
    assert httpx.post(url, files=files, timeout=60).status_code == 200  # compiled
    start = time.monotonic()
    assert httpx.post(url, files=files, timeout=30).status_code == 200
    unloaded = time.monotonic() - start
    for _ in range(20):
      s = socket.create_connection(("127.0.0.1", port))
      s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 1000\r\n\r\n-")  # fmt: skip
      slow.append(s)
    start = time.monotonic()
    ok = httpx.post(url, files=files, timeout=30)
    assert ok.status_code == 200 and ok.json()["records"][0]["status"] == "ok"
    assert time.monotonic() - start < unloaded + 2  # before the slow bodies' deadline: they held no place
    slow[0].settimeout(10)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
      slow[0].sendall(b"-")  # still sending, a byte at a time
      answer += slow[0].recv(4096)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 3 s" in answer, answer
  finally:
    for s in slow:
      s.close()
    server.should_exit = True
    thread.join(timeout=30)


@contextlib.contextmanager
def served(app):
  """``app`` on a real uvicorn server on a free loopback port, stopped at the end; yields the port."""
  import threading

  import portpicker
  import uvicorn

  port = portpicker.pick_unused_port()
  server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  try:
    while not server.started:
      time.sleep(0.05)
    yield port
  finally:
    server.should_exit = True
    thread.join(timeout=30)


def _answer(s) -> bytes:
  s.settimeout(20)
  got = b""
  while not got.rstrip().endswith(b"}"):
    chunk = s.recv(4096)
    if not chunk:
      break
    got += chunk
  return got


def test_a_request_past_the_line_is_refused_before_its_body_and_a_chunked_413_closes(trained, photos):
  """max_active 1, max_waiting 0, one slow request at work: the next gets 503 having sent its headers alone; a
  chunked body past the limit gets 413 with Connection: close, and the server stops reading it."""
  import socket
  import threading

  import httpx2 as httpx

  predictor = Predictor.from_workdir(trained, batch_size=4)
  app = create_app(_Slow(predictor, 4.0), predictor.info, limits=Limits(max_active=1, max_waiting=0, max_files=1))
  with served(app) as port:
    slow = threading.Thread(
      target=httpx.post, args=(f"http://127.0.0.1:{port}/v1/predict",),
      kwargs={"files": {"files": ("slow.jpg", photos["astronaut.jpg"], "image/jpeg")}, "timeout": 60},
    )  # fmt: skip
    slow.start()
    time.sleep(1.0)
    with socket.create_connection(("127.0.0.1", port)) as s:
      s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 5000000\r\n\r\n")  # fmt: skip
      answer = _answer(s)  # not one byte of the body sent
    assert answer.startswith(b"HTTP/1.1 503") and b"connection: close" in answer.lower(), answer
    slow.join()
    with socket.create_connection(("127.0.0.1", port)) as s:
      s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
      part = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
      )
      s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
      chunk = b"x" * 2**20
      sent, answer = 0, b""
      s.settimeout(0.2)
      with contextlib.suppress(OSError):  # the server closes while we still send
        while sent < 200 * 2**20 and not answer:
          s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
          sent += len(chunk)
          with contextlib.suppress(TimeoutError):
            answer = s.recv(4096)
      assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower(), answer[:300]
      assert sent < 100 * 2**20  # refused near the limit (10 MB a file here), not read to the end


def test_a_huge_or_bomb_sized_photo_is_reduced_or_a_413(trained, photos):
  """A 4096 px upload is decoded reduced: its box is in its own pixels (8x the 512 px photo's, within a few
  pixels); a PNG header of 20000 x 20000 is a 413 naming the pixel limit, as the docs say."""
  predictor = Predictor.from_workdir(trained, batch_size=4)
  astronaut = Image.open(io.BytesIO(photos["astronaut.jpg"]))
  big = io.BytesIO()
  astronaut.resize((4096, 4096), Image.Resampling.BILINEAR).save(big, format="PNG")
  header = io.BytesIO()
  Image.new("1", (20000, 20000)).save(header, format="PNG")
  with TestClient(create_app(predictor, predictor.info, limits=Limits(max_bytes=50 * 2**20))) as c:
    small = c.post("/v1/predict", files={"files": ("a.jpg", photos["astronaut.jpg"], "image/jpeg")}).json()
    large = c.post("/v1/predict", files={"files": ("a.png", big.getvalue(), "image/png")}).json()
    bomb = c.post("/v1/predict", files={"files": ("bomb.png", header.getvalue(), "image/png")})
  a, b = small["records"][0], large["records"][0]  # the best face of each
  np.testing.assert_allclose(np.asarray(b["box"]) / 8, a["box"], atol=4)
  assert bomb.status_code == 413 and "bomb.png: " in bomb.json()["detail"] and "pixels" in bomb.json()["detail"]


def test_work_a_504_abandoned_never_runs_beside_newer_requests_work(trained, photos):
  """max_active 1: four requests time out (504) while their detections go on; no more than one detection ever
  runs at once."""
  import threading

  predictor = Predictor.from_workdir(trained, batch_size=4)
  running, most, lock = 0, 0, threading.Lock()

  class Counted(_Slow):
    def faces(self, photo, detect):
      nonlocal running, most
      with lock:
        running += 1
        most = max(most, running)
      try:
        return super().faces(photo, detect)
      finally:
        with lock:
          running -= 1

  app = create_app(Counted(predictor, 1.5), predictor.info, limits=Limits(max_active=1, answer_s=0.5))
  with TestClient(app) as c:
    pool = concurrent.futures.ThreadPoolExecutor(4)
    files = {"files": ("slow.jpg", photos["astronaut.jpg"], "image/jpeg")}
    codes = list(pool.map(lambda _: c.post("/v1/predict", files=files).status_code, range(4)))
    assert codes == [504] * 4
    deadline = time.monotonic() + 30
    while running and time.monotonic() < deadline:
      time.sleep(0.1)
  assert most == 1
