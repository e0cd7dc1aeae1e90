"""A JAX function as an ONNX graph, converted from its jaxpr, with a dynamic batch dimension.

jax2onnx, the usual route, cannot be installed beside this project's Orbax:
every release that runs with Flax 0.12.8 pins orbax-checkpoint below 0.11.37.
So the jaxpr is converted here, primitive by primitive, for the primitives
that jaxface's models and detector use (``HANDLERS``). Anything computed from
constants alone (the weights, iota, the preprocessing constants) is folded at
conversion. A primitive outside the set is an ``Unsupported`` error naming
it: no graph is returned that was not converted whole. The batch dimension is
traced as a symbol (``jax.export.symbolic_shape``) and becomes the graph's
first input dimension, read back with ``Shape`` wherever a shape needs it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax
import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 18
BATCH = "batch"


class Unsupported(ValueError):
  """A primitive (or a use of one) that the converter cannot write exactly."""


class _Graph:
  def __init__(self, batch_dim):
    self.nodes, self.inits, self.batch_dim = [], [], batch_dim
    self._ids = itertools.count()
    self._batch = None  # the name of a (1,) int64 tensor holding the batch size, made on first use
    self.input_name = None

  def fresh(self, hint: str) -> str:
    return f"{hint}_{next(self._ids)}"

  def const(self, value, hint: str = "c") -> str:
    name = self.fresh(hint)
    self.inits.append(numpy_helper.from_array(np.asarray(value), name))
    return name

  def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs):
    outs = [self.fresh(op.lower()) for _ in range(n_out)]
    self.nodes.append(helper.make_node(op, inputs, outs, **attrs))
    return outs[0] if n_out == 1 else outs

  def batch(self) -> str:
    if self._batch is None:
      self._batch = self.node("Shape", [self.input_name], start=0, end=1)
    return self._batch

  def shape(self, dims) -> str:
    """An int64 shape tensor for ``dims``, where the batch symbol may stand in any place."""
    if all(isinstance(d, int) for d in dims):
      return self.const(np.array(dims, np.int64), "shape")
    parts = []
    for d in dims:
      if isinstance(d, int):
        parts.append(self.const(np.array([d], np.int64), "dim"))
      elif d == self.batch_dim:
        parts.append(self.batch())
      else:
        raise Unsupported(f"a shape dimension {d} other than the batch")
    return self.node("Concat", parts, axis=0)


def _np(v) -> np.ndarray:
  return np.asarray(jax.device_get(v))


def _onnx_type(dtype) -> int:
  return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# --- handlers: (graph, eqn, inputs) -> output names; an input is a name, or a numpy constant -------------------------


def _name(g: _Graph, x) -> str:
  return g.const(x) if isinstance(x, np.ndarray) else x


def _elementwise(op):
  def h(g, eqn, ins):
    return [g.node(op, [_name(g, x) for x in ins])]

  return h


def _unary(op):
  return lambda g, eqn, ins: [g.node(op, [_name(g, ins[0])])]


def _rsqrt(g, eqn, ins):
  return [g.node("Reciprocal", [g.node("Sqrt", [_name(g, ins[0])])])]


def _integer_pow(g, eqn, ins):
  x, y = _name(g, ins[0]), eqn.params["y"]
  if y == 2:
    return [g.node("Mul", [x, x])]
  return [g.node("Pow", [x, g.const(np.array(y, eqn.outvars[0].aval.dtype))])]


def _convert(g, eqn, ins):
  return [g.node("Cast", [_name(g, ins[0])], to=_onnx_type(eqn.params["new_dtype"]))]


def _identity(g, eqn, ins):
  return [g.node("Identity", [_name(g, ins[0])])]


def _reshape(g, eqn, ins):
  if eqn.params.get("dimensions") is not None:
    raise Unsupported("reshape with dimensions")
  return [g.node("Reshape", [_name(g, ins[0]), g.shape(eqn.params["new_sizes"])])]


def _squeeze(g, eqn, ins):
  axes = np.array(eqn.params["dimensions"], np.int64)
  return [g.node("Squeeze", [_name(g, ins[0]), g.const(axes, "axes")])]


def _broadcast_in_dim(g, eqn, ins):
  x, shape, bdims = ins[0], eqn.params["shape"], eqn.params["broadcast_dimensions"]
  in_shape = eqn.invars[0].aval.shape
  expanded = [1] * len(shape)
  for src, dst in enumerate(bdims):
    expanded[dst] = in_shape[src]
  y = g.node("Reshape", [_name(g, x), g.shape(expanded)])
  return [g.node("Expand", [y, g.shape(shape)])]


def _transpose(g, eqn, ins):
  return [g.node("Transpose", [_name(g, ins[0])], perm=list(eqn.params["permutation"]))]


def _concatenate(g, eqn, ins):
  return [g.node("Concat", [_name(g, x) for x in ins], axis=eqn.params["dimension"])]


def _pad(g, eqn, ins):
  cfg = eqn.params["padding_config"]
  if any(i != 0 for _, _, i in cfg) or any(lo < 0 or hi < 0 for lo, hi, _ in cfg):
    raise Unsupported("pad with interior or negative padding")
  pads = np.array([lo for lo, _, _ in cfg] + [hi for _, hi, _ in cfg], np.int64)
  return [g.node("Pad", [_name(g, ins[0]), g.const(pads, "pads"), _name(g, np.asarray(ins[1]))], mode="constant")]


def _slice(g, eqn, ins):
  p = eqn.params
  strides = p["strides"] or (1,) * len(p["start_indices"])
  axes = np.arange(len(p["start_indices"]), dtype=np.int64)
  shape = eqn.invars[0].aval.shape
  ends = []
  for lim, dim in zip(p["limit_indices"], shape, strict=True):
    if not isinstance(lim, int) and lim != dim:
      raise Unsupported(f"a slice ending at {lim}, a symbolic place short of the axis's end")
    ends.append(lim if isinstance(lim, int) else np.iinfo(np.int64).max)  # ONNX clamps to the axis's end
  if not all(isinstance(st, int) for st in p["start_indices"]):
    raise Unsupported("a slice starting at a symbolic place")
  args = [np.array(p["start_indices"], np.int64), np.array(ends, np.int64), axes, np.array(strides, np.int64)]
  return [g.node("Slice", [_name(g, ins[0]), *(g.const(a) for a in args)])]


def _dot_general(g, eqn, ins):
  (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
  lr, rr = len(eqn.invars[0].aval.shape), len(eqn.invars[1].aval.shape)
  letters = iter("abcdefghijklmnopqrstuvwxyz")
  lhs, rhs = [None] * lr, [None] * rr
  for a, b in zip(lb, rb, strict=True):
    lhs[a] = rhs[b] = next(letters)
  for a, b in zip(lc, rc, strict=True):
    lhs[a] = rhs[b] = next(letters)
  lhs = [c or next(letters) for c in lhs]
  rhs = [c or next(letters) for c in rhs]
  out = [lhs[a] for a in lb] + [c for i, c in enumerate(lhs) if i not in lb and i not in lc]
  out += [c for i, c in enumerate(rhs) if i not in rb and i not in rc]
  eq = f"{''.join(lhs)},{''.join(rhs)}->{''.join(out)}"
  return [g.node("Einsum", [_name(g, ins[0]), _name(g, ins[1])], equation=eq)]


def _to_nchw(g, x, spec):
  """``x``, whose axes ``spec`` lists as batch, feature, spatial..., transposed to N, C, spatial..."""
  return g.node("Transpose", [x], perm=list(spec))


def _conv(g, eqn, ins):
  p = eqn.params
  dn = p["dimension_numbers"]
  if any(d != 1 for d in p["lhs_dilation"]) or p["batch_group_count"] != 1:
    raise Unsupported("conv_general_dilated with lhs dilation or batch groups")
  x = _to_nchw(g, _name(g, ins[0]), dn.lhs_spec)
  w = ins[1]
  w = np.transpose(w, dn.rhs_spec) if isinstance(w, np.ndarray) else g.node("Transpose", [w], perm=list(dn.rhs_spec))
  pads = [lo for lo, _ in p["padding"]] + [hi for _, hi in p["padding"]]
  y = g.node(
    "Conv", [x, _name(g, w)], strides=list(p["window_strides"]), pads=pads, dilations=list(p["rhs_dilation"]),
    group=p["feature_group_count"],
  )  # fmt: skip
  return [g.node("Transpose", [y], perm=[int(i) for i in np.argsort(dn.out_spec)])]


def _pool(kind: str):
  """reduce_window_max (MaxPool) and reduce_window_sum (AveragePool, padding counted, times the window's size)."""

  def h(g, eqn, ins):
    p = eqn.params
    dims, strides, padding = p["window_dimensions"], p["window_strides"], p["padding"]
    if any(d != 1 for d in (*p["base_dilation"], *p["window_dilation"])):
      raise Unsupported(f"reduce_window_{kind} with dilation")
    rank = len(dims)
    spatial = list(range(1, rank - 1))  # N, spatial..., C: the layout of jaxface's (Flax's) pooling
    if dims[0] != 1 or dims[-1] != 1 or strides[0] != 1 or strides[-1] != 1:
      raise Unsupported(f"reduce_window_{kind} over the batch or channel axis")
    x = _to_nchw(g, _name(g, ins[0]), [0, rank - 1, *spatial])
    attrs = dict(
      kernel_shape=[dims[i] for i in spatial], strides=[strides[i] for i in spatial],
      pads=[padding[i][0] for i in spatial] + [padding[i][1] for i in spatial],
    )  # fmt: skip
    if kind == "max":
      y = g.node("MaxPool", [x], **attrs)
    else:
      y = g.node("AveragePool", [x], count_include_pad=1, **attrs)
      y = g.node("Mul", [y, g.const(np.asarray(np.prod(dims), eqn.outvars[0].aval.dtype))])
    return [g.node("Transpose", [y], perm=[0, *range(2, rank), 1])]

  return h


def _reduce(op):
  def h(g, eqn, ins):
    axes = g.const(np.array(eqn.params["axes"], np.int64), "axes")
    return [g.node(op, [_name(g, ins[0]), axes], keepdims=0)]

  return h


def _argmax(g, eqn, ins):
  (axis,) = eqn.params["axes"]
  y = g.node("ArgMax", [_name(g, ins[0])], axis=int(axis), keepdims=0)
  return [g.node("Cast", [y], to=_onnx_type(eqn.params["index_dtype"]))]


def _select_n(g, eqn, ins):
  if len(ins) != 3:
    raise Unsupported("select_n with more than two cases")
  pred = _name(g, ins[0])
  if np.dtype(eqn.invars[0].aval.dtype) != np.bool_:
    pred = g.node("Cast", [pred], to=onnx.TensorProto.BOOL)
  return [g.node("Where", [pred, _name(g, ins[2]), _name(g, ins[1])])]


def _ne(g, eqn, ins):
  return [g.node("Not", [g.node("Equal", [_name(g, x) for x in ins])])]


def _clamp(g, eqn, ins):
  lo, x, hi = (_name(g, v) for v in ins)
  return [g.node("Max", [g.node("Min", [x, hi]), lo])]


def _top_k(g, eqn, ins):
  k = g.const(np.array([eqn.params["k"]], np.int64), "k")
  values, idx = g.node("TopK", [_name(g, ins[0]), k], n_out=2, axis=-1, largest=1, sorted=1)
  return [values, g.node("Cast", [idx], to=_onnx_type(eqn.outvars[1].aval.dtype))]


def _gather(g, eqn, ins):
  """``x[:, i]``, ``x[..., [2, 1, 0]]`` and the like: one axis indexed by constants, every other axis whole (ONNX
  Gather)."""
  p, (x, idx) = eqn.params, ins
  dn, shape = p["dimension_numbers"], eqn.invars[0].aval.shape
  whole = all(p["slice_sizes"][a] == shape[a] for a in range(len(shape)) if a not in dn.collapsed_slice_dims)
  if not (
    isinstance(idx, np.ndarray) and idx.shape[-1:] == (1,) and dn.start_index_map == dn.collapsed_slice_dims
    and len(dn.collapsed_slice_dims) == 1 and not dn.operand_batching_dims and whole
  ):  # fmt: skip
    raise Unsupported("gather other than one axis indexed by constants")
  (axis,) = dn.collapsed_slice_dims
  rank = len(dn.offset_dims) + idx.ndim - 1
  placed = [a for a in range(rank) if a not in dn.offset_dims]  # where the indices' own axes land
  if idx.ndim == 1:
    indices = np.asarray(int(idx[0]), np.int64)
  elif idx.ndim == 2 and placed == [axis]:
    indices = idx[:, 0].astype(np.int64)
  else:
    raise Unsupported("gather whose indices land elsewhere than the axis they index")
  return [g.node("Gather", [_name(g, x), g.const(indices)], axis=axis)]


def _rev(g, eqn, ins):
  axes = list(eqn.params["dimensions"])
  n = len(axes)
  big = np.iinfo(np.int64).max
  args = [np.full(n, -1, np.int64), np.full(n, -big, np.int64), np.array(axes, np.int64), np.full(n, -1, np.int64)]
  return [g.node("Slice", [_name(g, ins[0]), *(g.const(a) for a in args)])]


HANDLERS: dict[str, Callable] = {
  "add": _elementwise("Add"), "sub": _elementwise("Sub"), "mul": _elementwise("Mul"), "div": _elementwise("Div"),
  "max": _elementwise("Max"), "min": _elementwise("Min"), "pow": _elementwise("Pow"),
  "gt": _elementwise("Greater"), "ge": _elementwise("GreaterOrEqual"), "lt": _elementwise("Less"),
  "le": _elementwise("LessOrEqual"), "eq": _elementwise("Equal"), "ne": _ne, "and": _elementwise("And"),
  "or": _elementwise("Or"), "not": _unary("Not"),
  "neg": _unary("Neg"), "exp": _unary("Exp"), "log": _unary("Log"), "sqrt": _unary("Sqrt"), "rsqrt": _rsqrt,
  "logistic": _unary("Sigmoid"), "tanh": _unary("Tanh"), "abs": _unary("Abs"), "sign": _unary("Sign"),
  "floor": _unary("Floor"), "ceil": _unary("Ceil"), "integer_pow": _integer_pow,
  "convert_element_type": _convert, "stop_gradient": _identity, "copy": _identity, "copy_p": _identity,
  "reshape": _reshape, "squeeze": _squeeze, "broadcast_in_dim": _broadcast_in_dim, "transpose": _transpose,
  "concatenate": _concatenate, "pad": _pad, "slice": _slice, "dot_general": _dot_general,
  "conv_general_dilated": _conv, "reduce_window_max": _pool("max"), "reduce_window_sum": _pool("sum"), "reduce_max": _reduce("ReduceMax"),
  "reduce_min": _reduce("ReduceMin"), "reduce_sum": _reduce("ReduceSum"), "argmax": _argmax, "select_n": _select_n,
  "clamp": _clamp, "top_k": _top_k, "gather": _gather, "rev": _rev,
}  # fmt: skip
# Calls whose body is inlined: (primitive, the param holding the body).
_CALLS = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "custom_jvp_call": "call_jaxpr",
          "custom_vjp_call": "call_jaxpr", "remat": "jaxpr", "checkpoint": "jaxpr"}  # fmt: skip
# Where a function chooses its formulation by platform (``lax.platform_dependent``: jaxface's depthwise gate), the
# accelerators' branch is taken: XLA's standard ops (a grouped convolution), which ONNX runtimes run natively. The CPU
# branch is a rewrite for XLA:CPU (k*k shifted multiply-adds), which onnxruntime runs far slower.
PLATFORM = "cuda"


def _read(env: dict, v):
  if isinstance(v, jax.extend.core.Literal):
    return np.asarray(v.val, v.aval.dtype)
  return env[v]


def _convert_jaxpr(g: _Graph, jaxpr, consts, args) -> list:
  env = {}
  for v, c in zip(jaxpr.constvars, consts, strict=True):
    env[v] = _np(c)
  for v, a in zip(jaxpr.invars, args, strict=True):
    env[v] = a
  for eqn in jaxpr.eqns:
    ins = [_read(env, v) for v in eqn.invars]
    name = eqn.primitive.name
    if name in _CALLS:
      body = eqn.params[_CALLS[name]]
      closed = body if hasattr(body, "consts") else jax.extend.core.ClosedJaxpr(body, ())
      outs = _convert_jaxpr(g, closed.jaxpr, closed.consts, ins)
    elif name == "platform_index":
      platforms = eqn.params["platforms"]
      named = [i for i, ps in enumerate(platforms) if ps is not None and PLATFORM in ps]
      default = [i for i, ps in enumerate(platforms) if ps is None]  # the branch for every platform not named
      index = (named or default or [len(platforms)])[0]
      outs = [np.asarray(index, np.int32)]
    elif name == "cond":
      if not isinstance(ins[0], np.ndarray):
        raise Unsupported("cond on a value computed from the input")
      branch = eqn.params["branches"][int(ins[0])]
      outs = _convert_jaxpr(g, branch.jaxpr, branch.consts, ins[1:])
    elif all(isinstance(x, np.ndarray) for x in ins) and not any(_symbolic(v) for v in eqn.outvars):
      got = eqn.primitive.bind(*ins, **eqn.params)  # constants only: folded here
      outs = [_np(x) for x in got] if eqn.primitive.multiple_results else [_np(got)]
    elif name in HANDLERS:
      outs = HANDLERS[name](g, eqn, ins)
    else:
      raise Unsupported(f"the primitive {name!r} has no ONNX conversion here")
    for v, o in zip(eqn.outvars, outs, strict=True):
      env[v] = o
  return [_read(env, v) for v in jaxpr.outvars]


def _symbolic(v) -> bool:
  return any(not isinstance(d, int) for d in getattr(v.aval, "shape", ()))


def convert(fn: Callable, shape: tuple[int, ...], dtype, *, input_name: str = "images", name: str = "jaxface"):
  """``fn`` (one array in, a dict or sequence of arrays out) as an ONNX model whose first input dimension is
  dynamic (``shape[0]`` is ignored). Outputs are named by their dict keys (or output_<i>)."""
  (b,) = jax.export.symbolic_shape(BATCH)
  spec = jax.ShapeDtypeStruct((b, *shape[1:]), dtype)
  closed, out_tree = jax.make_jaxpr(fn, return_shape=True)(spec)
  leaves, _ = jax.tree_util.tree_flatten_with_path(out_tree)
  names = [jax.tree_util.keystr(p).strip("[]'\"") or f"output_{i}" for i, (p, _) in enumerate(leaves)]
  g = _Graph(b)
  g.input_name = input_name
  outs = _convert_jaxpr(g, closed.jaxpr, closed.consts, [input_name])
  for o, n in zip(outs, names, strict=True):
    src = _name(g, o) if isinstance(o, np.ndarray) else o
    if isinstance(o, np.ndarray):  # an output that does not depend on the input: broadcast over the batch
      src = g.node("Expand", [src, g.shape([b, *o.shape[1:]])])
    g.nodes.append(helper.make_node("Identity", [src], [n]))
  dims = lambda s: [BATCH if not isinstance(d, int) else d for d in s]  # noqa: E731
  graph = helper.make_graph(
    g.nodes, name, [helper.make_tensor_value_info(input_name, _onnx_type(dtype), dims(spec.shape))],
    [helper.make_tensor_value_info(n, _onnx_type(leaf.dtype), dims(leaf.shape)) for n, (_, leaf) in zip(names, leaves, strict=True)],
    initializer=g.inits,
  )  # fmt: skip
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="jaxface")
  model.ir_version = 9  # onnxruntime reads IR 9 and older among the versions onnx writes for opset 18
  onnx.checker.check_model(model)
  return model
