"""Tensor files read and written with numpy alone: safetensors, and torch's .pth where torch is installed."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from jaxface import files
from jaxface.fetch import WeightsError

_DTYPES = {
  "F32": np.float32,
  "F16": np.float16,
  "F64": np.float64,
  "I64": np.int64,
  "I32": np.int32,
}  # BF16: widened below


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """All tensors of a .safetensors file, with numpy alone."""
  raw = Path(path).read_bytes()
  (n,) = struct.unpack("<Q", raw[:8])
  header = json.loads(raw[8 : 8 + n])
  header.pop("__metadata__", None)
  out = {}
  for key, info in header.items():
    start, end = info["data_offsets"]
    buf = raw[8 + n + start : 8 + n + end]
    if info["dtype"] == "BF16":  # widen to float32: bf16 is the top half of a float32
      arr = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
    elif info["dtype"] in _DTYPES:
      arr = np.frombuffer(buf, _DTYPES[info["dtype"]])
    else:
      raise WeightsError(f"{path}: tensor {key} has dtype {info['dtype']}, which jaxface does not read")
    out[key] = arr.reshape(info["shape"])
  return out


def write_safetensors(
  path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> None:
  header, offset, blobs = {}, 0, []
  for key, arr in tensors.items():
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    header[key] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
    offset += arr.nbytes
    blobs.append(arr.tobytes())
  if metadata:
    header["__metadata__"] = metadata
  head = json.dumps(header).encode()
  head += b" " * (-len(head) % 8)
  files.write_bytes(path, struct.pack("<Q", len(head)) + head + b"".join(blobs))


def read_torch_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """A torchvision state dict from .safetensors (numpy only) or .pth (needs torch)."""
  path = Path(path)
  if not path.is_file():
    raise WeightsError(f"{path}: no such weights file")
  if path.suffix == ".safetensors":
    return read_safetensors(path)
  try:
    import torch
  except ImportError:
    raise WeightsError(
      f"{path}: reading a .pth file needs PyTorch, which jaxface does not install. Either `pip install torch` "
      'once, or convert it where torch is installed:\n  python -c "import torch, safetensors.torch as st; '
      f"st.save_file(torch.load('{path.name}', map_location='cpu'), '{path.stem}.safetensors')\"\n"
      "and pass the .safetensors file instead."
    ) from None
  state = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}
