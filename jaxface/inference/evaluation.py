"""Evaluating a trained workdir on a split: per-example predictions, the metric report, and the files.

Writes DIR/eval_<split>.json (n, age MAE/RMSE, CS(5), gender accuracy; overall
and per age band, race and gender; the age interval's coverage and width when
the workdir is calibrated) and DIR/predictions_<split>.csv. ``calibrate=True``
first calibrates the interval on this split (``calibration``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from jaxface import files, metrics, provenance
from jaxface.data import examples, pipeline, prepare
from jaxface.inference import calibration, predictions, restore
from jaxface.inference.model import InferenceModel

SPLITS = ("validation", "test", "all")  # 'all': every usable image of an archive, folder or manifest
COLUMNS = ("file_name", "age", "gender", "race", "pred_age", "p_female")
# A manifest's labels beyond UTKFace's, read and written when its examples have them.
MANIFEST_COLUMNS = ("age_min", "age_max", "source", "group")


def _text(values) -> np.ndarray:
  return np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in values])


def predict_source(model: InferenceModel, source: Sequence[dict], batch_size: int) -> dict[str, np.ndarray]:
  """Per-example arrays over ``source`` (COLUMNS). The predictions stay on the device until the end: one sync."""
  more = tuple(k for k in MANIFEST_COLUMNS if len(source) and k in source[0])
  labels, preds = {k: [] for k in COLUMNS[:4] + more}, []
  batches = pipeline.eval_dataset(source, batch_size=batch_size, fields=pipeline.EVAL_FIELDS + more)
  for batch in tqdm(batches, desc="evaluating", total=len(batches), disable=None, mininterval=5):
    m = batch["mask"]
    preds.append((model(batch["image"]), m))
    for k in labels:
      labels[k].append((_text(batch[k]) if k in ("file_name", "source", "group") else np.asarray(batch[k]))[m])
  host = jax.device_get([p for p, _ in preds])
  cols = {k: np.concatenate(v) if v else np.zeros(0) for k, v in labels.items()}
  for k in host[0] if host else ("age", "p_female"):  # and age_spread, from a distribution head
    col = "pred_age" if k == "age" else k
    cols[col] = (
      np.concatenate([np.asarray(p[k])[m] for p, (_, m) in zip(host, preds, strict=True)]) if host else np.zeros(0)
    )
  return cols


def load_split(
  r: restore.Restored, split: str, data: str | None, crop: str | None = None
) -> tuple[Sequence[dict], dict]:
  """The examples of ``split`` and a description of where they came from (``crop``: a manifest's, else the run's)."""
  cfg = r.cfg
  crop = crop or cfg.crop
  if split == "all":
    opened = prepare.open_data(data or cfg.data, cfg.dataset, cfg.image_size, cfg.tfds_dir, crop)
    records, skips = opened.scan(crop)
    source = examples.ImageSource(records, cfg.image_size, manifest=opened.kind == "manifest")
    return source, {"source": str(opened.located()), "skipped": [s.__dict__ for s in skips]}
  b = prepare.prepare(data or cfg.data, cfg.dataset, cfg.image_size, cfg.tfds_dir, crop=crop)
  if split not in b.info.splits:
    raise ValueError(f"{prepare.name(b)} has no {split!r} split (it has {sorted(b.info.splits)})")
  digest = b.info.metadata.get("splits", {}).get(split, {}).get("digest")
  return b.as_data_source(split), {"dataset": prepare.name(b), "split_digest": digest}


def evaluate(
  workdir: str | Path, split: str = "validation", checkpoint: str = "best", tta: str = "none", data: str | None = None,
  calibrate: bool = False, coverage: float = calibration.DEFAULT_COVERAGE, crop: str | None = None,
) -> dict:  # fmt: skip
  t0 = time.perf_counter()
  run_info = provenance.record()
  workdir = Path(workdir)
  r = restore.load(workdir, checkpoint)
  source, origin = load_split(r, split, data, crop)
  cols = predict_source(InferenceModel(r, tta), source, r.cfg.batch_size)
  result = {
    "workdir": str(workdir), "arch": r.cfg.arch, "preset": r.cfg.preset, "split": split, **origin,
    "checkpoint": checkpoint, "step": r.step, "tta": tta,
    **metrics.report(
      cols["age"], cols["pred_age"], cols["gender"], cols["p_female"], cols["race"], cols.get("age_min"),
      cols.get("age_max"), by={k: cols[k] for k in ("source", "group") if k in cols},
    ),
    "gender_confusion": metrics.confusion(cols["gender"], cols["p_female"]).tolist(),
    **_interval(workdir, r, cols, split, checkpoint, tta, calibrate, coverage), **run_info, "wall_s": None,
  }  # fmt: skip
  result["wall_s"] = round(time.perf_counter() - t0, 2)
  files.write_json(workdir / f"eval_{split}.json", result)
  predictions.write(workdir / f"predictions_{split}.csv", cols)
  return result


def _interval(workdir: Path, r, cols: dict, split: str, checkpoint: str, tta: str, calibrate: bool, coverage: float):
  """{'interval': coverage and width} of the workdir's calibration (fitted here first with ``calibrate``).

  Adds each face's ``age_low`` and ``age_high`` to ``cols`` when there is one. Faces of unknown age (a manifest's
  -1) get an interval, but neither fit nor measure one.
  """
  spread = cols.get("age_spread")
  known = cols["age"] >= 0
  pick = (lambda a: None if a is None else a[known]) if not known.all() else (lambda a: a)  # noqa: E731
  if calibrate:
    cal = calibration.fit(
      pick(cols["age"]), pick(cols["pred_age"]), pick(spread), coverage, split=split, checkpoint=checkpoint,
      step=r.step, tta=tta,
    )  # fmt: skip
    calibration.save(workdir, cal)
  cal, why_not = calibration.for_model(workdir, r.step, tta)
  if cal is None:
    return {"interval": None, "interval_note": why_not}
  cols["age_low"], cols["age_high"] = calibration.interval(cols["pred_age"], cal, spread)
  out = calibration.report(pick(cols["age"]), pick(cols["pred_age"]), pick(cols["race"]), cal, pick(spread))
  return {"interval": {**out, "in_sample": cal.get("split") == split}}
