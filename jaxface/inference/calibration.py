"""An age interval for every prediction, calibrated on held-out faces (split-conformal).

``python -m jaxface.evaluate --calibrate`` scores each face of a held-out split
(validation): the absolute age error |true - predicted| divided by the face's
scale, and stores in the workdir (``calibration.json``) the conformal quantile
q: the ceil((n + 1) c)-th smallest of the n scores, for coverage c. Then
[age - q * scale, age + q * scale] covers the true age of a new face with
probability at least c, if the new faces are exchangeable with the calibration
split (drawn the same way): a promise about the average face, not each one.

The scale: with the distribution head, the predicted distribution's standard
deviation (at least ``MIN_SPREAD``), so faces the model is unsure of get wider
intervals; with the regression head, 1 year: the same width for every face.
The quantiles at ``LEVELS`` are stored too, for the reliability curve (``plot``).

Mondrian: q is also fitted within each band of *predicted* age (``labels.AGE_BANDS``; ``band_q``), so each band
gets its own coverage: a model whose errors grow faster with age than its spread does (the old, say) widens its
intervals there instead of borrowing the young faces' coverage. A band with too few calibration faces for the
coverage takes the overall q. A calibration written without ``band_q`` keeps one q for every face.
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
MIN_SPREAD = 1.0  # years: a floor on the scale, so that a very peaked distribution still gets an interval
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)  # coverages whose quantiles are stored for the reliability curve
METHODS = {
  "none": "split-conformal on |age - predicted age|",
  "spread": f"split-conformal on |age - predicted age| / max(predicted spread, {MIN_SPREAD:g})",
}


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


def scale(spread: np.ndarray | None, n: int) -> np.ndarray:
  """Each face's scale: its spread (at least MIN_SPREAD), or 1 year without one."""
  return np.ones(n) if spread is None else np.maximum(np.asarray(spread, np.float64), MIN_SPREAD)


def scores(age: np.ndarray, pred_age: np.ndarray, spread: np.ndarray | None) -> np.ndarray:
  errors = np.abs(np.asarray(age, np.float64) - np.asarray(pred_age, np.float64))
  return errors / scale(spread, len(errors))


def _enough(n: int, coverage: float) -> bool:
  return math.ceil((n + 1) * coverage) <= n


def predicted_bands(pred_age: np.ndarray) -> np.ndarray:
  """Each face's band of predicted age (an index into ``labels.AGE_BANDS``; ages past the last band's end clipped)."""
  return np.array([labels_lib.age_band(min(max(int(a), 0), labels_lib.MAX_AGE)) for a in np.asarray(pred_age)], int)


def round_up(q: float, digits: int = 4) -> float:
  """``q`` to ``digits`` decimals, never below it: a quantile rounded down would cover less than it promises."""
  r = round(q, digits)
  return r if r >= q else round(r + 10.0**-digits, digits)


def fit(age: np.ndarray, pred_age: np.ndarray, spread: np.ndarray | None, coverage: float, **about) -> dict:
  """The calibration: ``spread`` is the distribution head's (None for regression)."""
  s = scores(age, pred_age, spread)
  scaled_by = "none" if spread is None else "spread"
  cal = {"method": METHODS[scaled_by], "coverage": coverage, "scaled_by": scaled_by}
  q = round_up(conformal_quantile(s, coverage))
  cal |= {"half_width": q} if scaled_by == "none" else {"q": q, "min_spread": MIN_SPREAD}
  bands = predicted_bands(pred_age)
  cal["band_q"] = {
    name: round_up(conformal_quantile(s[bands == i], coverage)) if _enough((bands == i).sum(), coverage) else q
    for i, name in enumerate(labels_lib.AGE_BAND_NAMES)
  }
  levels = {f"{c:g}": round_up(conformal_quantile(s, c)) for c in LEVELS if _enough(len(s), c)}
  return cal | {"levels": levels, "n": len(s), **about}


def save(workdir: str | Path, calibration: dict) -> None:
  files.write_json(Path(workdir) / FILE, calibration)


def load(workdir: str | Path) -> dict | None:
  """The workdir's calibration, or None (an older workdir, or one never calibrated)."""
  path = Path(workdir) / FILE
  if not path.exists():
    return None
  try:
    cal = json.loads(path.read_text())
    float(cal["coverage"]), float(cal["q"] if cal.get("scaled_by") == "spread" else cal["half_width"])
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


def interval(
  pred_age: np.ndarray, calibration: dict, spread: np.ndarray | None = None, q: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """(low, high) around each predicted age (``q``: another level's quantile); ages are not negative."""
  pred_age = np.asarray(pred_age, np.float64)
  by_spread = calibration.get("scaled_by") == "spread"
  if by_spread and spread is None:
    raise ValueError("this calibration scales the interval by the predicted spread, and the model gives none")
  if q is None and "band_q" in calibration:  # Mondrian: each face its predicted band's q
    per_band = np.array([calibration["band_q"][name] for name in labels_lib.AGE_BAND_NAMES], np.float64)
    q = per_band[predicted_bands(pred_age)]
  elif q is None:
    q = calibration["q" if by_spread else "half_width"]
  half = q * (scale(spread, len(pred_age)) if by_spread else np.ones(len(pred_age)))
  return np.maximum(pred_age - half, 0.0), pred_age + half


def reliability(age: np.ndarray, pred_age: np.ndarray, spread: np.ndarray | None, calibration: dict) -> dict:
  """{nominal coverage: empirical coverage} of the intervals at each stored level."""
  age = np.asarray(age, np.float64)
  out = {}
  for level, q in calibration.get("levels", {}).items():
    low, high = interval(pred_age, calibration, spread, q)
    out[level] = round(float(((age >= low) & (age <= high)).mean()), 4)
  return out


def report(
  age: np.ndarray, pred_age: np.ndarray, race: np.ndarray, calibration: dict, spread: np.ndarray | None = None
) -> dict:
  """Empirical coverage and mean width of the intervals, overall, per age band and per race; the reliability."""
  age, race = np.asarray(age), np.asarray(race)
  low, high = interval(pred_age, calibration, spread)
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
    "reliability": reliability(age, pred_age, spread, calibration),
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
