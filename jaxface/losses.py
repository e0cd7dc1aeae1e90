"""The joint objective: ``age_w * MSE(age) + gender_w * BCE(gender)``, with an example mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def per_example(out: dict, age: jax.Array, gender: jax.Array) -> dict[str, jax.Array]:
  """Squared and absolute age errors (years), gender BCE and correctness, one value per example."""
  err = out["age"] - age.astype(jnp.float32)
  logit = out["gender_logit"]
  g = gender.astype(jnp.float32)
  return {
    "se": err**2,
    "ae": jnp.abs(err),
    "bce": optax.sigmoid_binary_cross_entropy(logit, g),
    "correct": ((logit > 0) == (g > 0.5)).astype(jnp.float32),
  }


def joint(out: dict, batch: dict, age_w: float, gender_w: float, mask: jax.Array | None = None):
  """Mean joint loss over the (masked) batch, and sums of the measurements for exact aggregation."""
  pe = per_example(out, batch["age"], batch["gender"])
  w = jnp.ones_like(pe["se"]) if mask is None else mask.astype(jnp.float32)
  n = jnp.maximum(w.sum(), 1.0)
  mse, bce = (w * pe["se"]).sum() / n, (w * pe["bce"]).sum() / n
  loss = age_w * mse + gender_w * bce
  sums = {k: (w * v).sum() for k, v in pe.items()} | {"n": w.sum(), "loss": loss * w.sum()}
  return loss, sums


def finalize(sums: dict) -> dict[str, float]:
  """Means from summed measurements: loss, age MAE/RMSE (years), MSE, BCE, gender accuracy."""
  n = max(float(sums["n"]), 1.0)
  return {
    "loss": float(sums["loss"]) / n,
    "age_mae": float(sums["ae"]) / n,
    "age_rmse": (float(sums["se"]) / n) ** 0.5,
    "age_mse": float(sums["se"]) / n,
    "gender_bce": float(sums["bce"]) / n,
    "gender_acc": float(sums["correct"]) / n,
    "n": int(round(float(sums["n"]))),
  }
