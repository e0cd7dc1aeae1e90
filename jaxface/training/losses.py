"""The joint objective: ``age_w * MSE(age) + gender_w * BCE(gender)``, with an example mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxface import metrics


def joint(out: dict, batch: dict, age_w: float, gender_w: float, mask: jax.Array | None = None):
  """Mean joint loss over the (masked) batch, and the metric sums (``metrics.sums``) for exact aggregation."""
  age, female = batch["age"].astype(jnp.float32), batch["gender"].astype(jnp.float32)
  logit = out["gender_logit"]
  pe = metrics.per_example(out["age"], age, logit > 0, female > 0.5)
  pe["bce"] = optax.sigmoid_binary_cross_entropy(logit, female)
  w = jnp.ones_like(age) if mask is None else mask.astype(jnp.float32)
  n = jnp.maximum(w.sum(), 1.0)
  loss = age_w * (w * pe["se"]).sum() / n + gender_w * (w * pe["bce"]).sum() / n
  return loss, metrics.sums(pe, w) | {metrics.LOSS: loss * w.sum()}
