"""A trained model as one portable file: its evaluation-mode forward pass, serialised with ``jax.export``.

The file is a zip of two entries. ``forward.jaxexport``: StableHLO with the
weights inside, lowered for cpu, cuda and tpu, with a symbolic batch
dimension: uint8 face crops (B, size, size, 3) in; ``age`` (years) and
``p_female`` out (and ``age_spread`` from a distribution head).
``meta.json``: what a server says about the model (arch, image size, config,
step, the workdir's provenance and evaluation metrics).
Loading it (``exported.ExportedModel``) needs JAX only, not jaxface's model code.

``export_onnx`` writes the same forward pass as ONNX (``jaxpr_onnx``), with a
dynamic batch and the same metadata, for onnxruntime and other runtimes. It
is checked against JAX on onnxruntime before it is written
(``check_onnx``): a file that does not give JAX's numbers is not written.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxface import files, shipped
from jaxface.inference import calibration as calib
from jaxface.inference import exported, jaxpr_onnx, model, onnx_model, restore

PLATFORMS = ("cpu", "cuda", "tpu")


ONNX_TOLERANCE = 1e-4  # relative and absolute, on every output
CHECK_BATCHES = (1, 3)  # onnxruntime against JAX on these batch sizes, whatever the batch the file is run at


def check_onnx(model, fn, shape: tuple[int, ...], seed: int = 0) -> dict[str, float]:
  """onnxruntime's outputs of ``model`` against JAX's ``fn`` on random uint8 images of ``shape`` at CHECK_BATCHES;
  the largest differences per output, or ValueError naming the output that is off."""
  try:
    import onnxruntime as ort
  except ImportError:
    raise ValueError("checking an ONNX export needs onnxruntime: pip install 'jaxface[onnx]'") from None
  sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
  names = [o.name for o in sess.get_outputs()]
  rng, worst = np.random.default_rng(seed), {}
  for n in CHECK_BATCHES:
    x = rng.integers(0, 256, (n, *shape[1:]), np.uint8)
    want = dict(zip(names, [np.asarray(v) for v in jax.tree.leaves(jax.device_get(jax.jit(fn)(x)))], strict=True))
    for name, got in zip(names, sess.run(None, {"images": x}), strict=True):
      if not np.allclose(got, want[name], rtol=ONNX_TOLERANCE, atol=ONNX_TOLERANCE):
        raise ValueError(
          f"onnxruntime's {name!r} differs from JAX's by {np.abs(got - want[name]).max():.3g} at batch {n}"
          f" (tolerance {ONNX_TOLERANCE}); the file was not written"
        )
      worst[name] = max(worst.get(name, 0.0), float(np.abs(got - want[name]).max()))
  return worst


def _write_onnx(model, out: str | Path, meta: dict) -> Path:
  from onnx import helper

  helper.set_model_props(model, {onnx_model.META_KEY: json.dumps(meta)})
  return _write(out, model.SerializeToString())


def export_onnx(workdir: str | Path, out: str | Path, checkpoint: str = "best", tta: str = "none") -> tuple[Path, dict]:
  """Writes the model as ONNX to ``out``, once onnxruntime gives JAX's numbers; returns its path and the check."""
  restored = restore.load(workdir, checkpoint)
  forward = model.InferenceModel(restored, tta=tta).forward
  size = restored.cfg.image_size
  fn = lambda images: forward(restored.params, restored.batch_stats, images)  # noqa: E731
  graph = jaxpr_onnx.convert(fn, (1, size, size, 3), np.uint8, name=f"jaxface_{restored.cfg.arch}")
  worst = check_onnx(graph, fn, (1, size, size, 3))
  cal, _ = calib.for_model(workdir, restored.step, tta)
  meta = {"format": onnx_model.FORMAT, "tta": tta, "check": {"max_abs_diff": worst, "batches": list(CHECK_BATCHES)}}
  meta |= restore.model_info(workdir, restored, checkpoint, cal)
  return _write_onnx(graph, out, meta), worst


def export_detector_onnx(out: str | Path) -> tuple[Path, dict]:
  """The detector's network (BlazeFace, as ``faces.cnn`` runs it: uint8 views in, raw box regressions and logits out)
  as ONNX, checked against JAX; the anchors' decoding and the merging stay with the caller, as with the .tflite."""
  from jaxface.faces import cnn

  net = cnn.load_model()
  fn = lambda images: dict(zip(("regressors", "logits"), net(images.astype(jnp.float32) / 127.5 - 1.0), strict=True))  # noqa: E731
  shape = (1, net.size, net.size, 3)
  graph = jaxpr_onnx.convert(fn, shape, np.uint8, name="blazeface")
  worst = check_onnx(graph, fn, shape)
  meta = {"format": onnx_model.FORMAT, "model": "detector", "image_size": net.size, "check": {"max_abs_diff": worst}}
  return _write_onnx(graph, out, meta), worst


WEIGHTS = ("float32", "float16")  # how the weights are stored in a .jaxface; the forward pass computes in float32


def export(
  workdir: str | Path, out: str | Path, checkpoint: str = "best", tta: str = "none", weights: str = "float32",
  with_detector: bool = False, note: str | None = None,
) -> Path:  # fmt: skip
  """Writes ``out``; returns its path. ``weights``: float16 halves the file (the forward pass casts them back to
  float32). ``with_detector``: the file also carries the face detector's pinned .tflite, so that it labels photos
  where the detector cannot be downloaded (``jaxface.shipped``). ``note``: a line every user of the file is shown
  (its terms of use, say), in its meta and at ``GET /v1/model``."""
  if weights not in WEIGHTS:
    raise ValueError(f"unknown weights dtype {weights!r}; choose one of {WEIGHTS}")
  restored = restore.load(workdir, checkpoint)
  forward = model.InferenceModel(restored, tta=tta).forward
  size = restored.cfg.image_size
  stored = jax.tree.map(lambda a: a.astype(weights) if a.dtype == jnp.float32 else a, restored.params)
  (batch,) = jax.export.symbolic_shape("batch")
  # The weights, closed over, become constants of the module (stored as ``weights``, computed in float32).
  closed = jax.jit(lambda images: forward(jax.tree.map(_as_float32, stored), restored.batch_stats, images))
  exp = jax.export.export(closed, platforms=PLATFORMS)(jax.ShapeDtypeStruct((batch, size, size, 3), jnp.uint8))
  cal, _ = calib.for_model(workdir, restored.step, tta)
  meta = {"format": exported.FORMAT, "tta": tta, "platforms": list(PLATFORMS), "weights": weights}
  meta |= restore.model_info(workdir, restored, checkpoint, cal) | ({"note": note} if note else {})
  detector = _detector_tflite() if with_detector else None
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr(exported.FORWARD, bytes(exp.serialize()))
    z.writestr(exported.META, json.dumps(meta, indent=1))
    if detector is not None:
      z.writestr(shipped.DETECTOR, detector)
  return _write(out, buf.getvalue())


def _write(out: str | Path, data: bytes) -> Path:
  out = Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  files.write_bytes(out, data)
  return out


def _as_float32(a):
  return a.astype(jnp.float32) if a.dtype == jnp.float16 else a


def _detector_tflite() -> bytes:
  """The pinned BlazeFace .tflite (converted, and downloaded, first if need be)."""
  from jaxface.faces import cnn

  cnn.load_model()
  data = (cnn.cache_dir() / "face_detection_full_range.tflite").read_bytes()
  if hashlib.sha256(data).hexdigest() != cnn.MODEL_SHA256:
    raise ValueError(f"the detector in {cnn.cache_dir()} is not the pinned release; convert it again")
  return data
