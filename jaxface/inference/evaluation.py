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
from jaxface.data import pipeline, prepare
from jaxface.data import source as source_lib
from jaxface.inference import calibration, predictions, restore
from jaxface.inference.model import InferenceModel

SPLITS = ("validation", "test", "all")  # 'all': every usable image of an archive or folder
COLUMNS = ("file_name", "age", "gender", "race", "pred_age", "p_female")


class ImageSource(Sequence):
  """Every usable file of a download, decoded on access at ``size``: for ``--split all``."""

  def __init__(self, records: list[source_lib.Record], size: int):
    self.records, self.size = records, size

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, i: int) -> dict:
    r = self.records[i]
    return {
      "image": source_lib.decode(r.data, self.size),
      "age": r.labels.age,
      "gender": r.labels.gender,
      "race": r.labels.race,
      "file_name": r.file_name,
    }


def predict_source(model: InferenceModel, source: Sequence[dict], batch_size: int) -> dict[str, np.ndarray]:
  """Per-example arrays over ``source`` (COLUMNS). The predictions stay on the device until the end: one sync."""
  labels, preds = {k: [] for k in COLUMNS[:4]}, []
  batches = pipeline.eval_dataset(source, batch_size=batch_size)
  for batch in tqdm(batches, desc="evaluating", total=len(batches), disable=None, mininterval=5):
    m = batch["mask"]
    preds.append((model(batch["image"]), m))
    for k in ("age", "gender", "race"):
      labels[k].append(np.asarray(batch[k])[m])
    labels["file_name"].append(
      np.asarray([f.decode() if isinstance(f, bytes) else str(f) for f in batch["file_name"]])[m]
    )
  host = jax.device_get([p for p, _ in preds])
  cols = {k: np.concatenate(v) if v else np.zeros(0) for k, v in labels.items()}
  for k in host[0] if host else ("age", "p_female"):  # and age_spread, from a distribution head
    col = "pred_age" if k == "age" else k
    cols[col] = (
      np.concatenate([np.asarray(p[k])[m] for p, (_, m) in zip(host, preds, strict=True)]) if host else np.zeros(0)
    )
  return cols


def load_split(r: restore.Restored, split: str, data: str | None) -> tuple[Sequence[dict], dict]:
  """The examples of ``split`` and a description of where they came from."""
  cfg = r.cfg
  if split == "all":
    path = source_lib.locate(data or cfg.data)
    records, skips = source_lib.scan(path)
    return ImageSource(records, cfg.image_size), {"source": str(path), "skipped": [s.__dict__ for s in skips]}
  b = prepare.prepare(data or cfg.data, cfg.dataset, cfg.image_size, cfg.tfds_dir)
  if split not in b.info.splits:
    raise ValueError(f"utk_face/{b.builder_config.name} has no {split!r} split (it has {sorted(b.info.splits)})")
  digest = b.info.metadata.get("splits", {}).get(split, {}).get("digest")
  return b.as_data_source(split), {"dataset": f"utk_face/{b.builder_config.name}:{b.version}", "split_digest": digest}


def evaluate(
  workdir: str | Path, split: str = "validation", checkpoint: str = "best", tta: str = "none", data: str | None = None,
  calibrate: bool = False, coverage: float = calibration.DEFAULT_COVERAGE,
) -> dict:  # fmt: skip
  t0 = time.perf_counter()
  run_info = provenance.record()
  workdir = Path(workdir)
  r = restore.load(workdir, checkpoint)
  source, origin = load_split(r, split, data)
  cols = predict_source(InferenceModel(r, tta), source, r.cfg.batch_size)
  result = {
    "workdir": str(workdir), "arch": r.cfg.arch, "preset": r.cfg.preset, "split": split, **origin,
    "checkpoint": checkpoint, "step": r.step, "tta": tta,
    **metrics.report(cols["age"], cols["pred_age"], cols["gender"], cols["p_female"], cols["race"]),
    "gender_confusion": metrics.confusion(cols["gender"], cols["p_female"]).tolist(),
    **_interval(workdir, r, cols, split, checkpoint, tta, calibrate, coverage), **run_info, "wall_s": None,
  }  # fmt: skip
  result["wall_s"] = round(time.perf_counter() - t0, 2)
  files.write_json(workdir / f"eval_{split}.json", result)
  predictions.write(workdir / f"predictions_{split}.csv", cols)
  return result


def _interval(workdir: Path, r, cols: dict, split: str, checkpoint: str, tta: str, calibrate: bool, coverage: float):
  """{'interval': coverage and width} of the workdir's calibration (fitted here first with ``calibrate``).

  Adds each face's ``age_low`` and ``age_high`` to ``cols`` when there is one.
  """
  spread = cols.get("age_spread")
  if calibrate:
    cal = calibration.fit(
      cols["age"], cols["pred_age"], spread, coverage, split=split, checkpoint=checkpoint, step=r.step, tta=tta
    )
    calibration.save(workdir, cal)
  cal, why_not = calibration.for_model(workdir, r.step, tta)
  if cal is None:
    return {"interval": None, "interval_note": why_not}
  cols["age_low"], cols["age_high"] = calibration.interval(cols["pred_age"], cal, spread)
  out = calibration.report(cols["age"], cols["pred_age"], cols["race"], cal, spread)
  return {"interval": {**out, "in_sample": cal.get("split") == split}}
