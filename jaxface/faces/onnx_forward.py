"""The detector's forward pass on onnxruntime, where the ``onnx`` extra installed it.

The network is the same port (``faces.blazeface``), converted once from its
jaxpr (``inference.jaxpr_onnx``) and kept beside the converted weights, keyed
like the kept JAX export; the top-k and the anchors' decoding, a few thousand
numbers a view, run in numpy as ``cnn.forward_fn`` runs them in XLA. Which
runtime a process uses: ``cnn.pick_runtime``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxface import files
from jaxface.faces import blazeface, cnn

NETWORK = "network-{key}.onnx"


def available() -> bool:
  return importlib.util.find_spec("onnxruntime") is not None


def _graph(d: Path) -> bytes:
  """The network as ONNX (uint8 views in; ``logits`` and ``regressors`` out), kept in ``d`` once converted."""
  path = d / NETWORK.format(key=cnn.export_key(d)[:16])
  try:
    return path.read_bytes()
  except OSError:
    pass
  import jax.numpy as jnp

  from jaxface.inference import jaxpr_onnx

  model = cnn.load_model(d)
  net = lambda x: dict(zip(("regressors", "logits"), model(x.astype(jnp.float32) / 127.5 - 1.0), strict=True))  # noqa: E731
  graph = jaxpr_onnx.convert(net, (1, model.size, model.size, 3), np.uint8, name="blazeface").SerializeToString()
  try:
    files.write_bytes(path, graph)
  except OSError as e:  # a read-only cache: converted again next time
    logging.warning("could not keep the detector's ONNX graph in %s (%s)", d, e)
  return graph


def forward(d: Path) -> tuple[int, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]:
  """(the views' side, uint8 views (n, size, size, 3) -> candidate points (n, TOP_K, 8, 2) in [0, 1] and scores
  (n, TOP_K)): ``cnn.forward_fn``'s outputs, from onnxruntime."""
  import onnxruntime as ort

  if cnn.stale(d) is not None:
    cnn.load_model(d)  # converts it
  session = ort.InferenceSession(_graph(d), providers=["CPUExecutionProvider"])
  size = session.get_inputs()[0].shape[1]
  anchor_xy = blazeface.anchors(size, cnn.ANCHOR_STRIDES, cnn.ANCHORS_PER_CELL)
  names = [o.name for o in session.get_outputs()]

  def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = dict(zip(names, session.run(None, {"images": images}), strict=True))
    logits, raw = out["logits"], out["regressors"]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))  # MediaPipe clips the raw scores
    idx = np.argsort(-scores, axis=1, kind="stable")[:, : cnn.TOP_K]  # lax.top_k's order, ties to the lower index
    pts = np.take_along_axis(raw, idx[:, :, None], axis=1).reshape(len(raw), -1, 8, 2) / np.float32(size)
    xy = anchor_xy[idx]  # (n, TOP_K, 2)
    centre, half = pts[:, :, 0] + xy, pts[:, :, 1] / 2
    points = np.concatenate(
      [(centre - half)[:, :, None], (centre + half)[:, :, None], pts[:, :, 2:] + xy[:, :, None]], 2
    )
    return points.astype(np.float32), np.take_along_axis(scores, idx, axis=1).astype(np.float32)

  return size, run
