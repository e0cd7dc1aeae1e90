"""MediaPipe's BlazeFace detector ported to Flax: the network, its anchors, and decoding its outputs.

The network is the ``.tflite`` graph itself, operator for operator
(``tflite_graph``), its weights as ``nnx.Param``: so the port cannot drift from
the original, and it runs jitted and batched on any JAX device. Depthwise
convolutions go through ``jaxface.depthwise`` (fast on CPU, XLA's grouped
convolution elsewhere). The test suite compares it with LiteRT's own outputs.

Input: (B, S, S, 3) float32 in [-1, 1] (S = 192 for the full-range model).
Output: for each of the N anchors, 16 box values (centre x/y, width, height,
then 6 keypoints x/y: the two eyes, the eye on the image's left first, the nose
tip, the mouth, the two ears), in the model's pixels relative to the anchor,
and a face logit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxface.xla import depthwise


class BlazeFace(nnx.Module):
  def __init__(self, spec: dict, weights: dict[str, np.ndarray]):
    self.spec = spec  # static: operators and shapes (plain data)
    self.size = int(spec["shapes"][spec["inputs"][0]][1])
    self.weights = nnx.Dict({k: nnx.Param(jnp.asarray(v)) for k, v in weights.items() if v.dtype != np.int32})
    # paddings and sizes: static, as nested tuples
    self.constants = {k: _tuples(v.tolist()) for k, v in weights.items() if v.dtype == np.int32}

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(B, S, S, 3) in [-1, 1] -> (box values (B, N, 16), face logits (B, N))."""
    env = {self.spec["inputs"][0]: x.astype(jnp.float32)}
    for op in self.spec["ops"]:
      env[op["outputs"][0]] = self._run(op, [self._get(env, t) for t in op["inputs"]])
    boxes, scores = (env[t] for t in self.spec["outputs"])
    return boxes, scores[..., 0]

  def _get(self, env: dict, name: str):
    if name in env:
      return env[name]
    if name in self.constants:
      return self.constants[name]
    return self.weights[name][...]

  def _run(self, op: dict, args: list) -> jax.Array:
    kind = op["op"]
    if kind == "CONV_2D":
      x, w, b = args  # w: (out, kh, kw, in)
      y = jax.lax.conv_general_dilated(
        x, w, tuple(op["stride"]), op["padding"], dimension_numbers=("NHWC", "OHWI", "NHWC")
      )
      return _act(y + b, op["act"])
    if kind == "DEPTHWISE_CONV_2D":
      x, w, b = args  # w: (1, k, k, channels)
      k, stride = w.shape[1], op["stride"][0]
      if op["stride"][0] != op["stride"][1] or w.shape[1] != w.shape[2]:
        raise ValueError(f"depthwise conv {op['outputs'][0]}: only square kernels and strides are supported")
      x = _pad_same(x, k, stride) if op["padding"] == "SAME" else x
      y = depthwise.depthwise_conv(x, jnp.transpose(w, (1, 2, 0, 3)), stride, 0)
      return _act(y + b, op["act"])
    if kind == "RELU":
      return jax.nn.relu(args[0])
    if kind == "ADD":
      return _act(args[0] + args[1], op["act"])
    if kind == "PAD":
      return jnp.pad(args[0], [tuple(int(v) for v in p) for p in args[1]])
    if kind == "MAX_POOL_2D":
      (x,) = args
      y = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *op["window"], 1), (1, *op["stride"], 1), op["padding"])
      return _act(y, op["act"])
    if kind == "RESIZE_BILINEAR":
      x, size = args
      if op["align_corners"] or not op["half_pixel_centers"]:
        raise ValueError(f"{op['outputs'][0]}: only half-pixel-centre bilinear resizing is supported")
      return jax.image.resize(x, (x.shape[0], int(size[0]), int(size[1]), x.shape[3]), "bilinear", antialias=False)
    if kind == "RESHAPE":
      shape = self.spec["shapes"][op["outputs"][0]]
      return args[0].reshape(args[0].shape[0], *shape[1:])
    if kind == "CONCATENATION":
      return _act(jnp.concatenate(args, axis=op["axis"]), op["act"])
    raise ValueError(f"operator {kind} is not implemented")


def _tuples(v):
  return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def _act(x: jax.Array, act: str | None) -> jax.Array:
  return jax.nn.relu(x) if act == "relu" else x


def _pad_same(x: jax.Array, k: int, stride: int) -> jax.Array:
  """TensorFlow's SAME padding (the extra pixel at the end), as explicit zeros."""
  pads = []
  for n in x.shape[1:3]:
    total = max((-(-n // stride) - 1) * stride + k - n, 0)
    pads.append((total // 2, total - total // 2))
  return jnp.pad(x, ((0, 0), *pads, (0, 0)))


def anchors(size: int, strides: tuple[int, ...], per_cell: tuple[int, ...]) -> np.ndarray:
  """(N, 2) anchor centres (x, y) in [0, 1]: MediaPipe's SSD anchors with fixed 1x1 size, as in its graphs."""
  out = []
  for stride, n in zip(strides, per_cell, strict=True):
    cells = size // stride
    c = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    ys, xs = np.meshgrid(c, c, indexing="ij")
    out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], 1), n, axis=0))
  return np.concatenate(out)


def decode(raw: jax.Array, anchor_xy: jax.Array, size: int) -> jax.Array:
  """Box values (B, N, 16) -> (B, N, 8, 2): box corners (x0, y0), (x1, y1), then the 6 keypoints, in [0, 1]."""
  pts = raw.reshape(*raw.shape[:-1], 8, 2) / size
  centre = pts[..., 0, :] + anchor_xy
  half = pts[..., 1, :] / 2
  keypoints = pts[..., 2:, :] + anchor_xy[..., None, :]
  return jnp.concatenate([(centre - half)[..., None, :], (centre + half)[..., None, :], keypoints], axis=-2)
