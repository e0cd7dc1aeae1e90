"""An age interval for every prediction, calibrated on held-out faces (split-conformal).

``python -m jaxface.evaluate --calibrate`` takes the absolute age errors
|true - predicted| of a held-out split (validation), and stores in the workdir
(``calibration.json``) the conformal quantile q: the ceil((n + 1) c)-th
smallest of the n errors, for coverage c. Then [age - q, age + q] covers the
true age of a new face with probability at least c, if the new faces are
exchangeable with the calibration split (drawn the same way): a promise about
the average face, not each one. With the regression head the width is the
same for every face; it does not say which faces are harder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from jaxface import files
from jaxface.data import labels as labels_lib

FILE = "calibration.json"
DEFAULT_COVERAGE = 0.9
METHOD = "split-conformal on |age - predicted age|"


def conformal_quantile(errors: np.ndarray, coverage: float) -> float:
  """The ceil((n + 1) * coverage)-th smallest error: a new error is at most it with probability >= coverage."""
  if not 0 < coverage < 1:
    raise ValueError(f"coverage must be in (0, 1), not {coverage}")
  errors = np.sort(np.asarray(errors, np.float64))
  n = len(errors)
  k = math.ceil((n + 1) * coverage)
  if k > n:
    raise ValueError(f"{n} calibration faces are too few for {coverage:.0%} coverage (needs at least {k})")
  return float(errors[k - 1])


def fit(age: np.ndarray, pred_age: np.ndarray, coverage: float, **about) -> dict:
  errors = np.abs(np.asarray(age, np.float64) - np.asarray(pred_age, np.float64))
  q = conformal_quantile(errors, coverage)
  return {"method": METHOD, "coverage": coverage, "half_width": round(q, 4), "n": len(errors), **about}


def save(workdir: str | Path, calibration: dict) -> None:
  files.write_json(Path(workdir) / FILE, calibration)


def load(workdir: str | Path) -> dict | None:
  """The workdir's calibration, or None (an older workdir, or one never calibrated)."""
  path = Path(workdir) / FILE
  if not path.exists():
    return None
  try:
    cal = json.loads(path.read_text())
    float(cal["half_width"]), float(cal["coverage"])
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(
      f"{path} is not a jaxface calibration ({type(e).__name__}: {e}); rerun evaluate --calibrate"
    ) from None
  return cal


def for_model(workdir: str | Path, step: int, tta: str) -> tuple[dict | None, str | None]:
  """(the workdir's calibration, None) when it was made for this checkpoint step and tta, else (None, why not)."""
  cal = load(workdir)
  if cal is None:
    return None, missing_note(workdir)
  if (cal.get("step"), cal.get("tta")) != (step, tta):
    return None, mismatch_note(cal, step, tta)
  return cal, None


def interval(pred_age: np.ndarray, calibration: dict) -> tuple[np.ndarray, np.ndarray]:
  """(low, high) around each predicted age; ages are not negative."""
  q = float(calibration["half_width"])
  pred_age = np.asarray(pred_age, np.float64)
  return np.maximum(pred_age - q, 0.0), pred_age + q


def report(age: np.ndarray, pred_age: np.ndarray, race: np.ndarray, calibration: dict) -> dict:
  """Empirical coverage and mean width of the intervals, overall, per age band and per race."""
  age, race = np.asarray(age), np.asarray(race)
  low, high = interval(pred_age, calibration)
  inside, width = (age >= low) & (age <= high), high - low

  def on(mask) -> dict:
    n = int(mask.sum())
    if not n:
      return {"n": 0}
    return {"n": n, "coverage": round(float(inside[mask].mean()), 4), "mean_width": round(float(width[mask].mean()), 3)}

  bands = np.array([labels_lib.age_band(int(a)) for a in age], dtype=int)
  return {
    "nominal_coverage": calibration["coverage"], "calibrated_on": calibration.get("split"),
    **on(np.ones(len(age), bool)),
    "per_age_band": {name: on(bands == i) for i, name in enumerate(labels_lib.AGE_BAND_NAMES)},
    "per_race": {
      **{name: on(race == i) for i, name in enumerate(labels_lib.RACES)},
      "unknown": on(race == labels_lib.UNKNOWN_RACE),
    },
  }  # fmt: skip


def missing_note(workdir: str | Path) -> str:
  return (
    f"{workdir} has no {FILE}, so predictions have no age interval; make one with: python -m jaxface.evaluate "
    f"--workdir {workdir} --split validation --calibrate"
  )


def mismatch_note(calibration: dict, step: int, tta: str) -> str:
  return (
    f"{FILE} was calibrated for checkpoint step {calibration.get('step')} (tta {calibration.get('tta')}), not step "
    f"{step} (tta {tta}): no age interval; calibrate this one with evaluate --calibrate"
  )
