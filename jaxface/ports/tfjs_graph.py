"""TF.js models read with numpy: the JSON's graph nodes, and the weights of its manifest from the binary shards.

A TF.js model is a JSON file (``modelTopology.node`` for a graph model, and a
``weightsManifest``: groups of shard files, each listing its tensors' names,
shapes and dtypes in order) beside the shards, which hold the tensors
back to back as little-endian bytes: float32, int32, or quantised (float16;
or uint8/uint16 with ``scale`` and ``min``: value = q * scale + min).
"""

from __future__ import annotations

import json

import numpy as np

from jaxface.fetch import WeightsError

_PLAIN = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANT = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


def read_weights(manifest: list[dict], shards: dict[str, bytes], what: str = "model") -> dict[str, np.ndarray]:
  """name -> array (float32, or int32/bool as stored) of every tensor in the manifest."""
  out = {}
  for group in manifest:
    try:
      buf = b"".join(shards[p] for p in group["paths"])
    except KeyError as e:
      raise WeightsError(f"{what}: weight shard {e} is missing") from None
    offset = 0
    for w in group["weights"]:
      n = int(np.prod(w["shape"], dtype=np.int64))
      q = w.get("quantization")
      dtype = _QUANT[q["dtype"]] if q else _PLAIN[w["dtype"]]
      size = n * np.dtype(dtype).itemsize
      if offset + size > len(buf):
        raise WeightsError(f"{what}: the shards end inside tensor {w['name']!r} (truncated?)")
      arr = np.frombuffer(buf, dtype, n, offset).reshape(w["shape"])
      offset += size
      if q and q["dtype"] != "float16":
        arr = arr.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
      out[w["name"]] = arr.astype(np.float32) if arr.dtype.kind == "f" or q else arr
    if offset != len(buf):
      raise WeightsError(f"{what}: {len(buf) - offset} bytes left over after the manifest's tensors")
  return out


def read_graph(model_json: bytes, shards: dict[str, bytes], what: str = "model") -> tuple[list[dict], dict]:
  """(the graph's nodes, its weights) of a TF.js graph model."""
  try:
    model = json.loads(model_json)
    nodes = model["modelTopology"]["node"]
    manifest = model["weightsManifest"]
  except (ValueError, KeyError, TypeError) as e:
    raise WeightsError(f"{what}: not a TF.js graph model ({type(e).__name__}: {e})") from None
  return nodes, read_weights(manifest, shards, what)
