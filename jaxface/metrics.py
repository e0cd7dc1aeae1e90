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


def sums(values: dict, weight) -> dict:
  """Weighted sums of per-example values (weight 0 masks padding), and the count ``n``."""
  return {k: (weight * v).sum() for k, v in values.items()} | {"n": weight.sum()}


def from_sums(s: dict) -> dict[str, float]:
  """Means from sums: age MAE/RMSE/MSE (years), CS(5), gender accuracy; the loss and BCE where summed."""
  n = max(float(s["n"]), 1.0)
  out = {
    AGE_MAE: float(s["ae"]) / n,
    AGE_RMSE: (float(s["se"]) / n) ** 0.5,
    "age_mse": float(s["se"]) / n,
    CS5: float(s["cs"]) / n,
    GENDER_ACC: float(s["correct"]) / n,
  }
  if LOSS in s:
    out |= {LOSS: float(s[LOSS]) / n, "gender_bce": float(s["bce"]) / n}
  return out | {"n": int(round(float(s["n"])))}


def prefixed(split: str, metrics: dict) -> dict:
  """history.json's keys: ``train_age_mae``, ``val_loss``, ... (the count ``n`` left out)."""
  return {f"{split}_{k}": v for k, v in metrics.items() if k != "n"}


def summary(age, pred_age, gender, p_female) -> dict:
  """n, age MAE / RMSE (years), CS(5), gender accuracy (P(female) > 0.5 means female)."""
  if len(age) == 0:
    return {"n": 0, AGE_MAE: None, AGE_RMSE: None, CS5: None, GENDER_ACC: None}
  pe = per_example(
    np.asarray(pred_age, np.float64), np.asarray(age, np.float64), np.asarray(p_female) > 0.5, np.asarray(gender) == 1
  )
  m = from_sums(sums(pe, np.ones(len(age))))
  return {k: m[k] for k in ("n", AGE_MAE, AGE_RMSE, CS5, GENDER_ACC)}


def report(age, pred_age, gender, p_female, race) -> dict:
  """``summary`` overall and per age band, per race (and unknown), per gender."""
  age, pred_age, gender, p_female, race = map(np.asarray, (age, pred_age, gender, p_female, race))

  def on(mask):
    return summary(age[mask], pred_age[mask], gender[mask], p_female[mask])

  bands = np.array([labels_lib.age_band(int(a)) for a in age], dtype=int)
  return {
    **summary(age, pred_age, gender, p_female),
    "per_age_band": {name: on(bands == i) for i, name in enumerate(labels_lib.AGE_BAND_NAMES)},
    "per_race": {
      **{name: on(race == i) for i, name in enumerate(labels_lib.RACES)},
      "unknown": on(race == labels_lib.UNKNOWN_RACE),
    },
    "per_gender": {name: on(gender == i) for i, name in enumerate(labels_lib.GENDERS)},
  }


def confusion(gender: np.ndarray, p_female: np.ndarray) -> np.ndarray:
  """2x2 counts, rows true (male, female), columns predicted."""
  pred = (np.asarray(p_female) > 0.5).astype(int)
  m = np.zeros((2, 2), int)
  np.add.at(m, (np.asarray(gender, int), pred), 1)
  return m
