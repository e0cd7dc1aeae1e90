"""An independent float64 reading of a TF.js graph model, in numpy: the reference the FaceRes port is tested against.

It runs the graph's own nodes in order (the ops FaceRes uses), with TensorFlow's
"SAME" padding, straight from the names and wiring in the JSON: it shares
nothing with the port but the weights reader.
"""

import base64

import numpy as np


def _attr(node, key):
  return node.get("attr", {}).get(key, {})


def _same_pad(x, k, s):
  h, w = x.shape[1:3]
  pads = []
  for n in (h, w):
    total = max((-(-n // s) - 1) * s + k - n, 0)
    pads.append((total // 2, total - total // 2))
  return np.pad(x, ((0, 0), *pads, (0, 0)))


def _conv(x, w, s, depthwise):
  k = w.shape[0]
  xp = _same_pad(x, k, s)
  b, h, wd, c = x.shape
  oh, ow = -(-h // s), -(-wd // s)
  out = np.zeros((b, oh, ow, w.shape[2] if depthwise else w.shape[3]))
  for i in range(k):
    for j in range(k):
      tap = xp[:, i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s, :]
      out += tap * w[i, j, :, 0] if depthwise else tap @ w[i, j]
  return out


def run(nodes: list[dict], weights: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
  """Every node's value (float64) for input ``x`` (the Placeholder)."""
  env = {}
  for n in nodes:
    op, name = n["op"], n["name"]
    args = [env[i.split(":")[0]] for i in n.get("input", [])]
    if op == "Const":
      env[name] = np.asarray(weights[name], np.float64) if name in weights else None
    elif op == "Placeholder":
      env[name] = np.asarray(x, np.float64)
    elif op in ("Conv2D", "DepthwiseConv2dNative"):
      assert base64.b64decode(_attr(n, "padding")["s"]) == b"SAME"
      s = int(_attr(n, "strides")["list"]["i"][1])
      env[name] = _conv(args[0], args[1], s, op == "DepthwiseConv2dNative")
    elif op == "Add":
      env[name] = args[0] + args[1]
    elif op == "Mul":
      env[name] = args[0] * args[1]
    elif op == "Relu":
      env[name] = np.maximum(args[0], 0)
    elif op == "Minimum":
      env[name] = np.minimum(args[0], args[1])
    elif op == "Maximum":
      env[name] = np.maximum(args[0], args[1])
    elif op == "Mean":
      env[name] = args[0].mean(axis=tuple(int(a) for a in np.atleast_1d(args[1])))
    elif op == "_FusedMatMul":
      fused = [base64.b64decode(f).decode() for f in _attr(n, "fused_ops")["list"]["s"]]
      y = args[0] @ args[1] + args[2]
      env[name] = np.maximum(y, 0) if "Relu" in fused else y
    elif op == "Sigmoid":
      env[name] = 1 / (1 + np.exp(-args[0]))
    elif op == "Softmax":
      e = np.exp(args[0] - args[0].max(axis=-1, keepdims=True))
      env[name] = e / e.sum(axis=-1, keepdims=True)
    else:
      raise NotImplementedError(f"{op} ({name})")
  return env
