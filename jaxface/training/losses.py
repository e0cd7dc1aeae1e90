"""The joint objective: ``age_w * age term + gender_w * BCE(gender)``, with an example mask.

The age term depends on the model's age head (``models.heads``):
- regression: squared error in years^2 (the classic recipe: weight 0.1);
- distribution: DLDL-v2 (Gao et al., 2018): the KL divergence (nats) from a
  discretised Gaussian of std ``age_sigma`` around the true age to the
  predicted distribution, plus the absolute error (years) of its expectation.
  In the custom cpu run (experiments/results/cpu_subset5000/custom) it was
  ~2 + ~14 after the first epoch and ~1.5 + ~5.5 at the end. Its gradient per
  example is at most ~2 in the logits, the regression term's 0.1 * 2 * error
  ~1-2: hence weight 1.0.
- distribution with ``age_loss="mean_variance"`` (Pan et al., 2018): the
  cross-entropy of the true age, plus 0.2 * (expectation - age)^2 / 2 (years^2)
  plus 0.05 * the predicted variance (years^2), the paper's weights. Its mean
  term's gradient, 0.2 * error, is the regression term's at weight 0.1, so the
  default weight stays 1.0.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from jaxface import metrics

AGE_LOSS_WEIGHTS = {"regression": 0.1, "distribution": 1.0}  # each head's default age weight
DISTRIBUTION_LOSSES = ("dldl", "mean_variance")  # the distribution head's losses (``age_loss``)
MEAN_VARIANCE_WEIGHTS = (0.2, 0.05)  # Pan et al.'s lambda_1 (mean) and lambda_2 (variance)


@dataclasses.dataclass(frozen=True)
class Objective:
  age_weight: float
  gender_weight: float
  age_sigma: float = 2.0
  age_loss: str = "dldl"

  @classmethod
  def of(cls, cfg) -> Objective:
    return cls(cfg.age_loss_weight, cfg.gender_loss_weight, cfg.age_sigma, cfg.age_loss)


def gaussian_labels(age: jax.Array, sigma: float, classes: int) -> jax.Array:
  """(B,) true ages -> (B, classes): a Gaussian over the integer ages 0..classes-1, normalised to sum to 1."""
  ages = jnp.arange(classes, dtype=jnp.float32)
  return jax.nn.softmax(-0.5 * ((ages - age[:, None]) / sigma) ** 2, axis=-1)


def age_term(out: dict, age: jax.Array, sigma: float, loss: str = "dldl") -> jax.Array:
  """Per example: squared error (regression); for the distribution head, KL(label || predicted) + |expectation - age|
  (dldl) or the mean-variance loss."""
  if "age_logits" not in out:
    return (out["age"] - age) ** 2
  log_q = jax.nn.log_softmax(out["age_logits"], axis=-1)
  if loss == "mean_variance":
    ages = jnp.arange(log_q.shape[-1], dtype=jnp.float32)
    true = jnp.clip(jnp.round(age).astype(jnp.int32), 0, log_q.shape[-1] - 1)
    ce = -jnp.take_along_axis(log_q, true[:, None], axis=-1)[:, 0]
    variance = (jnp.exp(log_q) * (ages - out["age"][:, None]) ** 2).sum(-1)
    mean_w, var_w = MEAN_VARIANCE_WEIGHTS
    return ce + mean_w * 0.5 * (out["age"] - age) ** 2 + var_w * variance
  if loss != "dldl":
    raise ValueError(f"unknown distribution-head loss {loss!r}; choose one of {DISTRIBUTION_LOSSES}")
  t = gaussian_labels(age, sigma, log_q.shape[-1])
  kl = (jax.scipy.special.xlogy(t, t) - t * log_q).sum(-1)
  return kl + jnp.abs(out["age"] - age)


def joint(out: dict, batch: dict, objective: Objective, mask: jax.Array | None = None):
  """Mean joint loss over the (masked) batch, and the metric sums (``metrics.sums``) for exact aggregation."""
  age, female = batch["age"].astype(jnp.float32), batch["gender"].astype(jnp.float32)
  logit = out["gender_logit"]
  pe = metrics.per_example(out["age"], age, logit > 0, female > 0.5)
  pe["bce"] = optax.sigmoid_binary_cross_entropy(logit, female)
  w = jnp.ones_like(age) if mask is None else mask.astype(jnp.float32)
  n = jnp.maximum(w.sum(), 1.0)
  age_loss = (w * age_term(out, age, objective.age_sigma, objective.age_loss)).sum() / n
  loss = objective.age_weight * age_loss + objective.gender_weight * (w * pe["bce"]).sum() / n
  return loss, metrics.sums(pe, w) | {metrics.LOSS: loss * w.sum()}
