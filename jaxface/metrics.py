"""Evaluation metrics from per-example predictions: overall, and per age band, race and gender."""

from __future__ import annotations

import numpy as np

from jaxface.data import labels as labels_lib

CS_YEARS = 5  # cumulative score: share of faces with |error| <= 5 years


def summary(age: np.ndarray, pred_age: np.ndarray, gender: np.ndarray, p_female: np.ndarray) -> dict:
  """n, age MAE / RMSE (years), CS(5), gender accuracy (P(female) > 0.5 means female)."""
  n = len(age)
  if n == 0:
    return {"n": 0, "age_mae": None, "age_rmse": None, "cs5": None, "gender_acc": None}
  err = np.asarray(pred_age, np.float64) - np.asarray(age, np.float64)
  return {
    "n": int(n),
    "age_mae": float(np.mean(np.abs(err))),
    "age_rmse": float(np.sqrt(np.mean(err**2))),
    "cs5": float(np.mean(np.abs(err) <= CS_YEARS)),
    "gender_acc": float(np.mean((np.asarray(p_female) > 0.5) == (np.asarray(gender) == 1))),
  }


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
