"""A ``.tflite`` detector read into plain data: its operators in order, and its weights as float32 arrays.

Only what the BlazeFace graphs use is read (``OPS``): convolutions, depthwise
convolutions, ReLU, ADD, channel padding, max-pooling, bilinear resizing,
reshapes and concatenation, with weights stored as float16 or float32
constants (their DEQUANTIZE operators are folded away). Anything else is an
error naming the operator, so an unexpected graph is never run wrongly.
Parsing needs the ``tflite`` package (flatbuffers, no TensorFlow).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

OPS = (
  "CONV_2D", "DEPTHWISE_CONV_2D", "RELU", "ADD", "PAD", "MAX_POOL_2D", "RESIZE_BILINEAR", "RESHAPE", "CONCATENATION",
)  # fmt: skip
ACTIVATIONS = {0: None, 1: "relu"}  # tflite's fused activations that the graphs use


@dataclasses.dataclass
class Graph:
  inputs: list[str]
  outputs: list[str]
  shapes: dict[str, list[int]]  # every tensor's shape
  ops: list[dict]  # {'op', 'inputs', 'outputs', **options}, in execution order
  weights: dict[str, np.ndarray]

  def spec(self) -> dict:
    """Everything but the weights, as JSON-able data."""
    return {"inputs": self.inputs, "outputs": self.outputs, "shapes": self.shapes, "ops": self.ops}


def _options(tfl, name: str, op) -> dict:
  raw = op.BuiltinOptions()

  def load(cls):
    o = cls()
    o.Init(raw.Bytes, raw.Pos)
    return o

  padding = {0: "SAME", 1: "VALID"}
  if name == "CONV_2D":
    o = load(tfl.Conv2DOptions)
    if not o.DilationHFactor() == o.DilationWFactor() == 1:
      raise ValueError("CONV_2D: dilated convolutions are not supported")
    return {"padding": padding[o.Padding()], "stride": [o.StrideH(), o.StrideW()], "act": _act(o)}
  if name == "DEPTHWISE_CONV_2D":
    o = load(tfl.DepthwiseConv2DOptions)
    if o.DepthMultiplier() not in (0, 1):
      raise ValueError("DEPTHWISE_CONV_2D: depth multipliers other than 1 are not supported")
    return {"padding": padding[o.Padding()], "stride": [o.StrideH(), o.StrideW()], "act": _act(o)}
  if name == "ADD":
    return {"act": _act(load(tfl.AddOptions))}
  if name == "MAX_POOL_2D":
    o = load(tfl.Pool2DOptions)
    return {
      "padding": padding[o.Padding()], "stride": [o.StrideH(), o.StrideW()], "window": [o.FilterHeight(), o.FilterWidth()],
      "act": _act(o),
    }  # fmt: skip
  if name == "RESIZE_BILINEAR":
    o = load(tfl.ResizeBilinearOptions)
    return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
  if name == "CONCATENATION":
    o = load(tfl.ConcatenationOptions)
    return {"axis": o.Axis(), "act": _act(o)}
  return {}


def _act(o) -> str | None:
  code = o.FusedActivationFunction()
  if code not in ACTIVATIONS:
    raise ValueError(f"fused activation {code} is not supported")
  return ACTIVATIONS[code]


def read(path: str | Path) -> Graph:
  """The graph of a ``.tflite`` file (its first subgraph)."""
  try:
    import tflite as tfl
  except ImportError:
    raise ImportError("reading a .tflite file needs the tflite package: pip install tflite") from None
  path = Path(path)
  buf = path.read_bytes()
  try:
    model = tfl.Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
  except Exception as e:  # flatbuffers raises bare errors on foreign bytes
    raise ValueError(f"{path} is not a .tflite model ({type(e).__name__}: {e})") from None
  names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
  dtypes = {tfl.TensorType.FLOAT32: np.float32, tfl.TensorType.FLOAT16: np.float16, tfl.TensorType.INT32: np.int32}

  def tname(i: int) -> str:
    return g.Tensors(i).Name().decode()

  constants = {}
  for i in range(g.TensorsLength()):
    t = g.Tensors(i)
    data = model.Buffers(t.Buffer()).DataAsNumpy() if t.Buffer() > 0 else 0
    if isinstance(data, np.ndarray) and data.size:
      if t.Type() not in dtypes:
        raise ValueError(f"{path}: tensor {tname(i)} has type {t.Type()}, not a float or int32 constant")
      constants[tname(i)] = np.frombuffer(data.tobytes(), dtypes[t.Type()]).reshape(t.ShapeAsNumpy())
  shapes = {tname(i): [int(d) for d in g.Tensors(i).ShapeAsNumpy()] for i in range(g.TensorsLength())}
  ops, weights = [], {}
  for i in range(g.OperatorsLength()):
    op = g.Operators(i)
    code = model.OperatorCodes(op.OpcodeIndex())
    name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
    ins = [tname(op.Inputs(j)) for j in range(op.InputsLength()) if op.Inputs(j) >= 0]
    outs = [tname(op.Outputs(j)) for j in range(op.OutputsLength())]
    if name == "DEQUANTIZE":  # a float16 constant made float32: fold it into the weights
      weights[outs[0]] = constants[ins[0]].astype(np.float32)
      continue
    if name not in OPS:
      raise ValueError(f"{path}: operator {i} is {name}, which jaxface's port does not implement ({', '.join(OPS)})")
    for t in ins:
      if t in constants and t not in weights:
        weights[t] = constants[t].astype(np.float32) if constants[t].dtype != np.int32 else constants[t]
    ops.append({"op": name, "inputs": ins, "outputs": outs, **_options(tfl, name, op)})
  inputs = [tname(g.Inputs(i)) for i in range(g.InputsLength())]
  outputs = [tname(g.Outputs(i)) for i in range(g.OutputsLength())]
  return Graph(inputs, outputs, shapes, ops, weights)
