"""Photos in, one record per face out: detection, UTKFace-style crops, and the model, batched across photos."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import jax
import numpy as np
from PIL import Image

from jaxface import faces, shipped
from jaxface.inference import calibration as calibration_lib
from jaxface.inference import records as records_lib


class Predictor:
  """A trained model with its face detector: images in, one record per face out.

  ``model``: uint8 face crops (B, size, size, 3) -> {'age', 'p_female'} (and
  'age_spread' from a distribution head), with an ``image_size``: a workdir's
  ``InferenceModel`` or an ``ExportedModel``.
  ``calibration``: the workdir's (``inference.calibration``); records then carry
  ``age_low`` and ``age_high``. Without one they have no interval.
  """

  def __init__(
    self, model, batch_size: int = 32, detect: bool = True, calibration: dict | None = None, detector: str = "cnn",
    info: dict | None = None,
  ):  # fmt: skip
    if detector not in faces.DETECTORS:
      raise ValueError(f"unknown detector {detector!r}; choose one of {faces.DETECTORS}")
    self.model, self.batch_size, self.detect, self.size = model, batch_size, detect, model.image_size
    self.calibration, self.detector = calibration, detector
    self.info = info or {}  # what the model is: arch, image size, config, step, provenance, metrics, calibration

  @classmethod
  def from_workdir(cls, workdir: str | Path, checkpoint: str = "best", **kw) -> Predictor:
    from jaxface.inference import model, restore

    restored = restore.load(workdir, checkpoint)
    cal, why_not = calibration_lib.for_model(workdir, restored.step, "none")
    if why_not:
      logging.warning("%s", why_not)
    info = restore.model_info(workdir, restored, checkpoint, cal)
    return cls(model.InferenceModel(restored), calibration=cal, info=info, **kw)

  @classmethod
  def shipped(cls, **kw) -> Predictor:
    """The model that ships with jaxface (``jaxface.shipped``; for non-commercial research only)."""
    return cls.from_export(shipped.model(), **kw)

  @classmethod
  def from_export(cls, path: str | Path, **kw) -> Predictor:
    """A file written by ``python -m jaxface.export``: JAX runs a ``.jaxface`` file, onnxruntime an ``.onnx`` one;
    jaxface's model code is not imported."""
    if Path(path).suffix.lower() == ".onnx":
      from jaxface.inference.onnx_model import OnnxModel as Model
    else:
      from jaxface.inference.exported import ExportedModel as Model

    m = Model(path)
    if m.meta.get("calibration") is None:
      logging.warning("%s was exported without a calibration: predictions have no age interval", path)
    info = {k: v for k, v in m.meta.items() if k != "format"}
    return cls(m, calibration=m.meta.get("calibration"), info=info, **kw)

  @classmethod
  def from_args(cls, args, **kw) -> Predictor:
    """The predictor a CLI's ``cli.add_model_flags`` name: --model (an export), --workdir and --checkpoint, or
    neither (the shipped model), with --batch-size and --detector."""
    kw = dict(batch_size=args.batch_size, detector=args.detector, **kw)
    if args.workdir:
      return cls.from_workdir(args.workdir, args.checkpoint, **kw)
    return cls.from_export(args.model or shipped.model(), **kw)

  def predict(self, image: str | Path | Image.Image | np.ndarray) -> list[dict]:
    """Records for the faces of one image (a no-face or error record when there are none)."""
    return list(self.predict_many([faces.load_photo(image)]))

  def faces(self, photo: faces.Photo, detect: bool | None = None) -> list[tuple[dict, np.ndarray]]:
    """The faces of a readable photo: each one's record (no prediction yet) and its crop.

    ``detect``: False when the photo is already a face crop (default: as the predictor was made).
    """
    return records_lib.face_crops([photo], self.size, self.detect if detect is None else detect, self.detector)[0]

  @property
  def shapes(self) -> list[int]:
    """The batch sizes ``run`` compiles: powers of two up to the batch size, and the batch size."""
    return sorted({min(2**i, self.batch_size) for i in range(self.batch_size.bit_length() + 1)})

  def run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
    """The model on any number of crops, in batches of the batch size; a smaller batch is padded to the next of
    ``shapes``, so one face costs one face's compute, not a full batch's, with a few compiled shapes."""
    out = {"age": [], "p_female": []}
    for start in range(0, len(crops), self.batch_size):
      images = crops[start : start + self.batch_size]
      n = len(images)
      if (padded := next(b for b in self.shapes if b >= n)) > n:
        images = np.concatenate([images, np.zeros((padded - n, *images.shape[1:]), np.uint8)])
      got = jax.device_get(self.model(images))
      for k in got:
        out.setdefault(k, []).append(np.asarray(got[k])[:n])
    return {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in out.items()}

  def label(self, records: list[dict], out: dict[str, np.ndarray]) -> list[dict]:
    """The records with the model's outputs for them (``run``'s, row for row): age, interval, gender."""
    low = high = None
    if self.calibration is not None:
      low, high = calibration_lib.interval(out["age"], self.calibration, out.get("age_spread"))
    labelled = []
    for i, record in enumerate(records):
      rec = {**record, "age": round(float(out["age"][i]), 2)}
      if low is not None:
        rec |= {"age_low": round(float(low[i]), 2), "age_high": round(float(high[i]), 2)}
      p = float(out["p_female"][i])
      labelled.append(rec | {"gender": records_lib.gender(p), "p_female": round(p, 4)})
    return labelled

  def predict_many(self, photos: Iterable[faces.Photo]) -> Iterator[dict]:
    """Records for many photos (``records.photo_rows``: the detector runs ``records.DETECT_PHOTOS`` photos at a
    time), the faces batched across photos at a static batch size."""
    pending: list[tuple[dict, np.ndarray]] = []
    for _, rows in records_lib.photo_rows(photos, self.find_faces):
      for rec, crop in rows:
        if crop is None:
          yield rec
          continue
        pending.append((rec, crop))
        if len(pending) == self.batch_size:
          yield from self._flush(pending)
          pending = []
    if pending:
      yield from self._flush(pending)

  def find_faces(self, photos: list[faces.Photo]) -> list[list[tuple[dict, np.ndarray]]]:
    """``records.face_crops`` as this predictor is set up (its crop size, detector, and whether to detect)."""
    return records_lib.face_crops(photos, self.size, self.detect, self.detector)

  def _flush(self, items: list[tuple[dict, np.ndarray]]) -> Iterator[dict]:
    yield from self.label([rec for rec, _ in items], self.run(np.stack([p for _, p in items])))
