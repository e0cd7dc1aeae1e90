"""ONNX export: every arch and the detector converted from their jaxprs, onnxruntime against JAX on real faces at batch
1 and 8 with one dynamic-batch graph; the exported file predicting as the workdir; and nothing written unchecked."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort
import pytest
from conftest import real_photos
from PIL import Image

from jaxface import config as config_lib
from jaxface import export as export_cli
from jaxface import models
from jaxface.data import augment
from jaxface.faces import image
from jaxface.inference import export, jaxpr_onnx, onnx_model
from jaxface.inference.predictor import Predictor

TOL = 1e-4


@pytest.fixture(scope="module")
def photos():
  """8 real face photos (UTKFace where JAXFACE_DATA is set, else skimage's photos, with a warning), read once."""
  return real_photos(8)


def _faces(photos, n: int, size: int) -> np.ndarray:
  crops = [np.asarray(image.to_square(p, size)) for p in photos]
  return np.stack([crops[i % len(crops)] for i in range(n)])


def _ort(model):
  return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _same(fn, model, x, session=None):
  want = [np.asarray(v) for v in jax.tree.leaves(jax.device_get(jax.jit(fn)(x)))]
  got = (session or _ort(model)).run(None, {"images": x})
  for w, g in zip(want, got, strict=True):
    assert g.shape == w.shape
    np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("arch", [a for a in models.ARCHS if a not in ("faceres_deep", "resnet50")])
def test_every_arch_converts_and_onnxruntime_gives_jax_numbers(arch, photos):
  """Each network once: faceres_deep is faceres's network with other weights, and ResNet-50's operations (convolution,
  batch norm, ReLU, a 3x3/2 max-pool, residual adds, dense layers) are all in the others (cydral has the max-pool),
  at ten times their compile and run time."""
  size = 64 if arch in ("faceres", "cydral") else 32  # small: the conversion does not depend on the size
  cfg = config_lib.make(arch, image_size=size, age_head="distribution")
  m = models.from_config(cfg)
  m.eval()
  norm = arch in models.TORCHVISION

  def fn(x):
    return m(augment.preprocess(x, imagenet_norm=norm))

  graph = jaxpr_onnx.convert(fn, (1, size, size, 3), np.uint8)
  assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == jaxpr_onnx.BATCH
  faces, session = _faces(photos, 8, size), _ort(graph)
  for n in (1, 8):  # one graph, two batch sizes
    _same(fn, graph, faces[:n], session)


def test_the_exported_model_predicts_as_the_workdir(trained, photos, tmp_path, capsys):
  out = tmp_path / "model.onnx"
  assert export_cli.main(["--workdir", str(trained), "--out", str(out), "--format", "onnx"]) == 0
  assert "onnxruntime = JAX to age" in capsys.readouterr().err
  import onnx

  meta = onnx_model.read_meta(onnx.load(str(out)))
  assert meta["arch"] == "custom" and meta["image_size"] == 32 and meta["check"]["batches"] == [1, 3]
  faces = _faces(photos, 8, 32)
  a = Predictor.from_workdir(trained, detect=False, batch_size=8)
  b = Predictor.from_export(out, detect=False, batch_size=8)
  assert type(b.model).__name__ == "OnnxModel"
  ra, rb = a.run(faces), b.run(faces)
  assert set(ra) == set(rb)
  for k in ra:
    np.testing.assert_allclose(rb[k], ra[k], rtol=TOL, atol=TOL)
  got = b.predict(faces[0])
  assert got[0]["status"] == "ok" and got[0]["age"] == pytest.approx(float(ra["age"][0]), abs=0.01)


def test_the_detector_network_exports_with_the_originals_outputs(photos, tmp_path):
  from jaxface.faces import cnn

  path, worst = export.export_detector_onnx(tmp_path / "blazeface.onnx")
  assert set(worst) == {"regressors", "logits"}
  with pytest.raises(ValueError, match="the face detector's network, not an age and gender model"):
    Predictor.from_export(path)
  net = cnn.load_model()
  views = np.stack([cnn.letterbox(p, (0, 0, *p.size), net.size)[0] for p in photos])
  run = jax.jit(lambda x: net(x.astype(jnp.float32) / 127.5 - 1.0))
  sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
  names = [o.name for o in sess.get_outputs()]
  for n in (1, 8):
    want = dict(zip(("regressors", "logits"), jax.device_get(run(views[:n])), strict=True))
    got = dict(zip(names, sess.run(None, {"images": views[:n]}), strict=True))
    for k in want:
      np.testing.assert_allclose(got[k], np.asarray(want[k]), rtol=TOL, atol=2e-4)  # regressions: pixels at 192 px


def test_an_op_that_cannot_be_exported_is_named_and_nothing_is_written(trained, tmp_path, monkeypatch, capsys):
  with pytest.raises(jaxpr_onnx.Unsupported, match="'cumsum'"):
    jaxpr_onnx.convert(lambda x: jnp.cumsum(x.astype(jnp.float32), axis=1), (1, 4), np.uint8)
  monkeypatch.setattr(
    jaxpr_onnx, "HANDLERS", {k: v for k, v in jaxpr_onnx.HANDLERS.items() if k != "conv_general_dilated"}
  )
  out = tmp_path / "m.onnx"
  assert export_cli.main(["--workdir", str(trained), "--out", str(out), "--format", "onnx"]) == 2
  assert "'conv_general_dilated' has no ONNX conversion" in capsys.readouterr().err and not out.exists()


def test_a_graph_that_does_not_give_jax_numbers_is_not_written(trained, tmp_path, monkeypatch, capsys):
  """A conversion gone wrong (here: every Sigmoid written as a Tanh) is caught by the check before writing."""
  monkeypatch.setitem(
    jaxpr_onnx.HANDLERS, "logistic", lambda g, eqn, ins: [g.node("Tanh", [jaxpr_onnx._name(g, ins[0])])]
  )
  out = tmp_path / "m.onnx"
  assert export_cli.main(["--workdir", str(trained), "--out", str(out), "--format", "onnx"]) == 2
  err = capsys.readouterr().err
  assert "differs from JAX's" in err and "was not written" in err and not out.exists()


def test_bad_onnx_files_and_flags_say_what_is_wrong(tmp_path, capsys):
  bad = tmp_path / "x.onnx"
  bad.write_bytes(b"not a model")
  with pytest.raises(ValueError, match="x.onnx is not"):
    Predictor.from_export(bad)
  import onnx
  from onnx import helper

  plain = helper.make_model(
    helper.make_graph([helper.make_node("Identity", ["images"], ["y"])], "g",
                      [helper.make_tensor_value_info("images", onnx.TensorProto.UINT8, [1])],
                      [helper.make_tensor_value_info("y", onnx.TensorProto.UINT8, [1])])
  )  # fmt: skip
  onnx.save(plain, tmp_path / "plain.onnx")
  with pytest.raises(ValueError, match="no jaxface metadata"):
    Predictor.from_export(tmp_path / "plain.onnx")
  with pytest.raises(SystemExit):
    export_cli.main(["--detector", "--out", str(tmp_path / "d.onnx")])  # the detector: ONNX only
  assert "--detector with --format onnx" in capsys.readouterr().err


def test_the_server_answers_with_an_onnx_model(trained, photos, tmp_path):
  """``serve --model model.onnx``'s path: the predictor from the file, the file's metadata as the model's info."""
  pytest.importorskip("fastapi")
  from fastapi.testclient import TestClient

  from jaxface.serving.app import create_app

  out, _ = export.export_onnx(trained, tmp_path / "model.onnx")
  predictor = Predictor.from_export(out, detect=False, batch_size=4)
  info = predictor.info
  face = _faces(photos, 1, 32)[0]
  buf = io.BytesIO()
  Image.fromarray(face).save(buf, format="PNG")
  with TestClient(create_app(predictor, info)) as c:
    assert c.get("/v1/model").json()["arch"] == "custom"
    r = c.post("/v1/predict?detect=false", files={"files": ("face.png", buf.getvalue(), "image/png")})
  assert r.status_code == 200, r.text
  (rec,) = r.json()["records"]
  assert rec["status"] == "ok" and rec["age"] == pytest.approx(float(predictor.run(face[None])["age"][0]), abs=0.01)
