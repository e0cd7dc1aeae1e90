"""A model exported by ``jaxface.export --format onnx``, run by onnxruntime (the ``onnx`` extra); no JAX model code.

Its jaxface metadata (arch, image size, calibration, provenance: the same as a
``.jaxface`` file's) is a JSON string in the ONNX model's ``metadata_props``
under ``META_KEY``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "jaxface-onnx/1"
META_KEY = "jaxface"


def read_meta(model) -> dict:
  """The jaxface metadata of an ONNX ModelProto, or ValueError."""
  props = {p.key: p.value for p in model.metadata_props}
  if META_KEY not in props:
    raise ValueError("no jaxface metadata: not written by python -m jaxface.export --format onnx")
  meta = json.loads(props[META_KEY])
  if meta.get("format") != FORMAT:
    raise ValueError(f"export format {meta.get('format')!r}; this jaxface reads {FORMAT}")
  return meta


class OnnxModel:
  """uint8 face crops (B, size, size, 3) -> {'age', 'p_female'} (and 'age_spread'), as ``ExportedModel`` gives them."""

  def __init__(self, path: str | Path, threads: int = 0):
    try:
      import onnx
      import onnxruntime as ort
    except ImportError:
      raise ValueError(f"{path}: running an ONNX model needs onnxruntime: pip install 'jaxface[onnx]'") from None
    path = Path(path)
    try:
      meta = read_meta(onnx.load(str(path), load_external_data=False))
    except (OSError, ValueError, onnx.onnx_cpp2py_export.checker.ValidationError) as e:
      raise ValueError(f"{path} is not a jaxface ONNX export ({e})") from None
    except Exception as e:  # protobuf's DecodeError for bytes that are not a model
      raise ValueError(f"{path} is not an ONNX model ({type(e).__name__}: {e})") from None
    if meta.get("model") == "detector":
      raise ValueError(f"{path} is the face detector's network, not an age and gender model")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    self.path, self.meta, self.image_size = path, meta, int(meta["image_size"])
    self.outputs = [o.name for o in self.session.get_outputs()]

  def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
    got = self.session.run(None, {"images": np.ascontiguousarray(images, np.uint8)})
    return dict(zip(self.outputs, got, strict=True))
