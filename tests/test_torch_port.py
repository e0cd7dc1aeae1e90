"""The Flax backbones compute what torchvision's compute (../shared/fixtures, README beside it)."""

import json
import zlib

import jax
import numpy as np
import pytest
from conftest import shared_file_or_skip
from flax import nnx

from jaxface import convert, fetch
from jaxface.models import MobileNetV2, ResNet50
from jaxface.ports import backbone, tensor_files, torchvision_weights


@pytest.fixture(scope="module")
def ref():
  return np.load(shared_file_or_skip("fixtures/torchvision_reference.npz"))


def synthetic_resnet50(ref) -> dict[str, np.ndarray]:
  """The fixture README's recipe, rule by rule."""
  out = {}
  for key, shape in zip(ref["resnet50_keys"], ref["resnet50_shapes"], strict=True):
    shape = tuple(json.loads(str(shape)))
    rng = np.random.default_rng(zlib.crc32(str(key).encode()))
    if key.endswith("running_var"):
      v = 1.0 + 0.1 * rng.random(shape)
    elif key.endswith(("running_mean", ".bias")):
      v = 0.1 * rng.standard_normal(shape)
    elif len(shape) == 1:
      v = 1.0 + 0.1 * rng.standard_normal(shape)
    else:
      v = rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))
    out[str(key)] = v.astype(np.float32)
  return out


def rel_err(a, b) -> float:
  return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def features(backbone, x_nchw):
  return np.asarray(jax.jit(lambda m, x: m(x))(backbone, np.transpose(x_nchw, (0, 2, 3, 1))))


@pytest.mark.parametrize("size", [224, 128])
def test_resnet50_matches_torchvision(ref, size):
  sd = synthetic_resnet50(ref)
  model = ResNet50(rngs=nnx.Rngs(0))
  backbone.load_backbone(model, torchvision_weights.torch_to_flat(sd))
  feats = features(model, ref[f"input_{size}"])
  assert rel_err(feats, ref[f"resnet50_synthetic_features_{size}"]) <= 1e-4
  logits = feats @ sd["fc.weight"].T + sd["fc.bias"]
  assert rel_err(logits, ref[f"resnet50_synthetic_logits_{size}"]) <= 1e-4


@pytest.fixture(scope="module")
def mobilenet_sd():
  return tensor_files.read_safetensors(shared_file_or_skip("weights/mobilenet_v2-b0353104.safetensors"))


@pytest.mark.parametrize("size", [224, 128])
def test_mobilenet_v2_matches_torchvision(ref, mobilenet_sd, size):
  model = MobileNetV2(rngs=nnx.Rngs(0))
  backbone.load_backbone(model, torchvision_weights.torch_to_flat(mobilenet_sd))
  logits = (
    features(model, ref[f"input_{size}"]) @ mobilenet_sd["classifier.1.weight"].T + mobilenet_sd["classifier.1.bias"]
  )
  want = ref[f"mobilenet_v2_logits_{size}"]
  assert rel_err(logits, want) <= 1e-4
  # The cat (image 0): same top-3 as torchvision (Egyptian cat 285, tiger cat 282, tabby 281).
  assert list(np.argsort(-logits[0])[:3]) == list(np.argsort(-want[0])[:3])
  assert set(np.argsort(-logits[0])[:3]) == {285, 282, 281}


def test_strict_key_and_shape_check(mobilenet_sd):
  flat = torchvision_weights.torch_to_flat(mobilenet_sd)
  model = MobileNetV2(rngs=nnx.Rngs(0))
  broken = dict(flat)
  broken.pop(("features", 1, "conv", 1, "kernel"))
  with pytest.raises(fetch.WeightsError, match="1 missing"):
    backbone.load_backbone(model, broken)
  with pytest.raises(fetch.WeightsError, match="does not fit the ResNet50"):
    backbone.load_backbone(ResNet50(rngs=nnx.Rngs(0)), flat)


def test_convert_cli_round_trip(tmp_path, mobilenet_sd):
  src = shared_file_or_skip("weights/mobilenet_v2-b0353104.safetensors")
  assert convert.main(["--arch", "mobilenet_v2", "--source", str(src), "--out", str(tmp_path / "mnv2")]) == 0
  flat = backbone.read_pretrained(tmp_path / "mnv2")
  want = torchvision_weights.torch_to_flat(mobilenet_sd)
  assert flat.keys() == want.keys()
  for k in want:
    np.testing.assert_array_equal(flat[k], want[k])


def test_safetensors_round_trip_and_bf16(tmp_path):
  a = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "y": np.ones(4, np.float32)}
  tensor_files.write_safetensors(tmp_path / "a.safetensors", a)
  b = tensor_files.read_safetensors(tmp_path / "a.safetensors")
  assert all(np.array_equal(a[k], b[k]) for k in a)


def test_pth_without_torch_says_how(tmp_path, monkeypatch):
  import sys

  monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
  p = tmp_path / "resnet50-0676ba61.pth"
  p.write_bytes(b"PK")
  with pytest.raises(fetch.WeightsError, match="(?s)needs PyTorch.*safetensors"):
    tensor_files.read_torch_file(p)


def test_offline_download_names_the_file(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXFACE_CACHE", str(tmp_path))

  def offline(*a, **k):
    raise fetch.urllib.error.URLError("no network")

  monkeypatch.setattr(fetch.urllib.request, "urlopen", offline)
  with pytest.raises(fetch.WeightsError, match=f"put it at {tmp_path}/resnet50-0676ba61.pth"):
    torchvision_weights.download("resnet50")


def test_torchvision_files_are_pinned_by_their_full_digest(tmp_path, monkeypatch):
  """Each pin is a whole sha256 (not the 8 hex digits, 32 bits, in torchvision's file name, which it must agree
  with), and a file that is not the pinned one is refused, saying so."""
  for arch, url in torchvision_weights.TORCHVISION_URLS.items():
    pin = torchvision_weights.TORCHVISION_SHA256[arch]
    assert len(pin) == 64 and pin.startswith(url.rsplit("-", 1)[1].split(".")[0])
  monkeypatch.setenv("JAXFACE_CACHE", str(tmp_path))
  (tmp_path / "mobilenet_v2-b0353104.pth").write_bytes(b"not the weights")
  with pytest.raises(fetch.WeightsError, match="is not the pinned b03531047ffa"):
    torchvision_weights.download("mobilenet_v2")
