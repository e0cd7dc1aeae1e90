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

A manifest's partial labels (``batch`` has ``age_min``, ``age_max`` and
``age_std``; ``data.manifest``): an unknown age (-1) or gender (-1) is masked
out of its term. An age range trains the distribution head against a label
spread uniformly over the whole years it holds (dldl), or the probability
it gives the range (mean_variance), and its absolute-error term is the
distance to the range (0 inside); the regression head and the mean term take
the midpoint. An apparent age's std, when given, is the dldl label's std.
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


def _range_terms(out: dict, age: jax.Array, batch: dict, sigma: float, loss: str) -> jax.Array:
  """``age_term`` for partial labels: ranges and spreads (see the module's docstring)."""
  lo, hi, std = (batch[k].astype(jnp.float32) for k in ("age_min", "age_max", "age_std"))
  log_q = jax.nn.log_softmax(out["age_logits"], axis=-1)
  ages = jnp.arange(log_q.shape[-1], dtype=jnp.float32)
  inside = (ages >= lo[:, None]) & (ages <= hi[:, None])
  is_range = (hi > lo) & inside.any(-1)
  true = jnp.clip(jnp.round(age), 0, log_q.shape[-1] - 1)
  if loss == "mean_variance":
    target = jnp.where(is_range[:, None], inside, ages == true[:, None])  # never empty
    ce = -jax.scipy.special.logsumexp(log_q, axis=-1, b=target.astype(jnp.float32))
    variance = (jnp.exp(log_q) * (ages - out["age"][:, None]) ** 2).sum(-1)
    mean_w, var_w = MEAN_VARIANCE_WEIGHTS
    return ce + mean_w * 0.5 * (out["age"] - age) ** 2 + var_w * variance
  if loss != "dldl":
    raise ValueError(f"unknown distribution-head loss {loss!r}; choose one of {DISTRIBUTION_LOSSES}")
  spread = jnp.where(std > 0, jnp.maximum(std, 0.5), sigma)
  gauss = jax.nn.softmax(-0.5 * ((ages - age[:, None]) / spread[:, None]) ** 2, axis=-1)
  uniform = inside / jnp.maximum(inside.sum(-1, keepdims=True), 1)
  t = jnp.where(is_range[:, None], uniform, gauss)
  kl = (jax.scipy.special.xlogy(t, t) - t * log_q).sum(-1)
  return kl + jnp.maximum(jnp.maximum(lo - out["age"], out["age"] - hi), 0.0)


def age_term(out: dict, age: jax.Array, sigma: float, loss: str = "dldl", batch: dict | None = None) -> jax.Array:
  """Per example: squared error (regression); for the distribution head, KL(label || predicted) + |expectation - age|
  (dldl) or the mean-variance loss. ``batch`` with partial labels: ranges and spreads as well."""
  if "age_logits" not in out:
    return (out["age"] - age) ** 2
  if batch is not None and "age_min" in batch:
    return _range_terms(out, age, batch, sigma, loss)
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
  w = jnp.ones_like(age) if mask is None else mask.astype(jnp.float32)
  w_age = w_gender = None
  if "age_min" in batch:  # partial labels: unknowns (-1) masked out of their terms
    w_age, w_gender = w * (age >= 0), w * (batch["gender"] >= 0)
    female = jnp.maximum(female, 0.0)
  pe = metrics.per_example(out["age"], age, logit > 0, female > 0.5)
  pe["bce"] = optax.sigmoid_binary_cross_entropy(logit, female)
  wa, wg = (w, w) if w_age is None else (w_age, w_gender)
  age_loss = (wa * age_term(out, age, objective.age_sigma, objective.age_loss, batch)).sum() / jnp.maximum(
    wa.sum(), 1.0
  )
  gender_loss = (wg * pe["bce"]).sum() / jnp.maximum(wg.sum(), 1.0)
  loss = objective.age_weight * age_loss + objective.gender_weight * gender_loss
  return loss, metrics.sums(pe, w, w_age, w_gender) | {metrics.LOSS: loss * w.sum()}
