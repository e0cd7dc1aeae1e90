"""The metric schema, defined once: what is measured per example, how sums become metrics, and the key names.

Training (running sums on the device, step by step) and evaluation (per-example
predictions) both reduce through ``per_example``, ``sums`` and ``from_sums``,
so a validation figure in history.json and the same figure from ``evaluate``
are one computation. The operators work on numpy and JAX arrays alike.
"""

from __future__ import annotations

import numpy as np

from jaxface.data import labels as labels_lib

CS_YEARS = 5  # cumulative score: share of faces with |error| <= 5 years

# Key names of history.json ("<split>_<metric>"), eval_<split>.json and the checkpoints' metrics.
AGE_MAE, AGE_RMSE, CS5, GENDER_ACC, LOSS = "age_mae", "age_rmse", "cs5", "gender_acc", "loss"
TRAIN, VAL = "train", "val"
BEST_METRIC = f"{VAL}_{AGE_MAE}"  # the checkpoint kept and restored as "best" has the lowest


def per_example(pred_age, age, pred_female, female) -> dict:
  """Absolute and squared age errors (years), within CS(5), gender correct: one value per example."""
  err = pred_age - age
  ae = abs(err)
  return {"ae": ae, "se": err * err, "cs": (ae <= CS_YEARS) * 1.0, "correct": (pred_female == female) * 1.0}


AGE_VALUES, GENDER_VALUES = ("ae", "se", "cs"), ("correct", "bce")


def sums(values: dict, weight, age_weight=None, gender_weight=None) -> dict:
  """Weighted sums of per-example values (weight 0 masks padding), and the count ``n``.

  ``age_weight`` / ``gender_weight``: partial labels, the faces whose age / gender is known; their counts are
  ``n_age`` / ``n_gender``, and the age / gender means divide by them.
  """
  out = {k: (weight * v).sum() for k, v in values.items()} | {"n": weight.sum()}
  if age_weight is not None:
    out |= {k: (age_weight * values[k]).sum() for k in AGE_VALUES if k in values} | {"n_age": age_weight.sum()}
  if gender_weight is not None:
    out |= {k: (gender_weight * values[k]).sum() for k in GENDER_VALUES if k in values} | {
      "n_gender": gender_weight.sum()
    }
  return out


def add(acc: dict | None, s: dict) -> dict:
  """``acc + s``, key by key (``acc`` is None at the first batch): how the train and eval steps' sums accumulate,
  inside the jitted calls.

  Multi-process runs on CPU deadlocked in Gloo collectives when a program
  without collectives (an eager add of two global arrays) ran between the
  steps' collective programs, with several CPU devices per process; with the
  sums carried through the steps, nothing runs between them.
  """
  return s if acc is None else {k: acc[k] + s[k] for k in acc}


def from_sums(s: dict) -> dict[str, float]:
  """Means from sums: age MAE/RMSE/MSE (years), CS(5), gender accuracy; the loss and BCE where summed."""
  n = max(float(s["n"]), 1.0)
  na, ng = max(float(s.get("n_age", n)), 1.0), max(float(s.get("n_gender", n)), 1.0)
  out = {
    AGE_MAE: float(s["ae"]) / na,
    AGE_RMSE: (float(s["se"]) / na) ** 0.5,
    "age_mse": float(s["se"]) / na,
    CS5: float(s["cs"]) / na,
    GENDER_ACC: float(s["correct"]) / ng,
  }
  if LOSS in s:
    out |= {LOSS: float(s[LOSS]) / n, "gender_bce": float(s["bce"]) / ng}
  return out | {"n": int(round(float(s["n"])))}


def prefixed(split: str, metrics: dict) -> dict:
  """history.json's keys: ``train_age_mae``, ``val_loss``, ... (the count ``n`` left out)."""
  return {f"{split}_{k}": v for k, v in metrics.items() if k != "n"}


def summary(age, pred_age, gender, p_female, age_min=None, age_max=None) -> dict:
  """n, age MAE / RMSE (years), CS(5), gender accuracy (P(female) > 0.5 means female).

  Partial labels: an unknown age or gender (-1) is left out of its metrics (``n_age``, ``n_gender`` count the rest);
  ``age_min``/``age_max`` given: the MAE is to a range's midpoint (``age``), and ``age_in_range`` is the share of
  predictions inside the range (rounded to whole years, as ages are given).
  """
  age, pred_age = np.asarray(age, np.float64), np.asarray(pred_age, np.float64)
  gender, p_female = np.asarray(gender), np.asarray(p_female)
  if len(age) == 0:
    return {"n": 0, AGE_MAE: None, AGE_RMSE: None, CS5: None, GENDER_ACC: None}
  ka, kg = age >= 0, gender >= 0
  pe = per_example(pred_age, age, p_female > 0.5, gender == 1)
  partial = not (ka.all() and kg.all())
  m = from_sums(sums(pe, np.ones(len(age)), *((ka * 1.0, kg * 1.0) if partial else (None, None))))
  out = {k: m[k] for k in ("n", AGE_MAE, AGE_RMSE, CS5, GENDER_ACC)}
  if not ka.any():
    out |= {AGE_MAE: None, AGE_RMSE: None, CS5: None}
  if not kg.any():
    out[GENDER_ACC] = None
  if partial:
    out |= {"n_age": int(ka.sum()), "n_gender": int(kg.sum())}
  if age_min is not None and ka.any():
    lo, hi, p = np.asarray(age_min)[ka], np.asarray(age_max)[ka], np.round(pred_age[ka])
    out["age_in_range"] = float(((p >= lo) & (p <= hi)).mean())
  return out


def report(age, pred_age, gender, p_female, race, age_min=None, age_max=None, by: dict | None = None) -> dict:
  """``summary`` overall and per age band, per race (and unknown), per gender; and per value of each ``by`` column
  (a manifest's ``source`` and ``group``), where given."""
  age, pred_age, gender, p_female, race = map(np.asarray, (age, pred_age, gender, p_female, race))
  ranges = (np.asarray(age_min), np.asarray(age_max)) if age_min is not None else None

  def on(mask):
    return summary(
      age[mask], pred_age[mask], gender[mask], p_female[mask], *((r[mask] for r in ranges) if ranges else ())
    )

  bands = np.array([labels_lib.age_band(float(a)) for a in age], dtype=int)
  out = {
    **on(np.ones(len(age), bool)),
    "per_age_band": {name: on(bands == i) for i, name in enumerate(labels_lib.AGE_BAND_NAMES)},
    "per_race": {
      **{name: on(race == i) for i, name in enumerate(labels_lib.RACES)},
      "unknown": on(race == labels_lib.UNKNOWN_RACE),
    },
    "per_gender": {name: on(gender == i) for i, name in enumerate(labels_lib.GENDERS)},
  }
  for col, values in (by or {}).items():
    values = np.asarray(values)
    if len(set(values.tolist()) - {""}):
      out[f"per_{col}"] = {str(v) or "(none)": on(values == v) for v in sorted(set(values.tolist()))}
  return out


def confusion(gender: np.ndarray, p_female: np.ndarray) -> np.ndarray:
  """2x2 counts, rows true (male, female), columns predicted."""
  pred = (np.asarray(p_female) > 0.5).astype(int)
  m = np.zeros((2, 2), int)
  np.add.at(m, (np.asarray(gender, int), pred), 1)
  return m
