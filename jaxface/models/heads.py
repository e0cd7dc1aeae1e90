"""The outputs every jaxface model ends in: age (years) and a gender logit (female = 1).

Two age heads (``AGE_HEADS``). ``regression``: one unit, the age in years.
``distribution``: logits over the integer ages 0..116 (``AGES``, every age in
UTKFace); the age is the distribution's expectation, and its standard
deviation (``spread``) says how sure the model is. Both give ``age``; the
distribution head also gives ``age_logits`` (the loss and the spread need them).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.data import labels as labels_lib

# Mean age of UTKFace (33 years): starting the age output there spares the first
# epochs from learning a constant, and keeps the 0.1 * MSE term from swamping BCE.
AGE_BIAS_INIT = 33.0
# The distribution head's output biases start as a broad Gaussian (log-density) around that mean, for the same reason.
AGE_PRIOR_STD = 20.0

ZEROS = nnx.initializers.zeros_init()
AGE_HEADS = ("regression", "distribution")
AGES = labels_lib.MAX_AGE + 1  # the distribution head's classes: ages 0..116 in whole years


def age_units(age_head: str) -> int:
  if age_head not in AGE_HEADS:
    raise ValueError(f"unknown age head {age_head!r}; choose one of {AGE_HEADS}")
  return 1 if age_head == "regression" else AGES


def age_bias_init(age_head: str):
  if age_head == "regression":
    return nnx.initializers.constant(AGE_BIAS_INIT)
  ages = jnp.arange(AGES, dtype=jnp.float32)
  return nnx.initializers.constant(-0.5 * ((ages - AGE_BIAS_INIT) / AGE_PRIOR_STD) ** 2)


def expectation_and_spread(probs: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and standard deviation (years) of distributions over ages 0..116, (B, AGES) -> (B,), (B,)."""
  ages = jnp.arange(probs.shape[-1], dtype=jnp.float32)
  mean = probs @ ages
  var = probs @ ages**2 - mean**2
  return mean, jnp.sqrt(jnp.maximum(var, 0.0))


def released_age_logits(logits: jax.Array) -> jax.Array:
  """A released network's logits over ages 0..n-1 -> logits over ``AGES`` (class k is age k; none above n-1)."""
  age = jax.nn.log_softmax(logits.astype(jnp.float32))
  return jnp.pad(age, ((0, 0), (0, AGES - age.shape[-1])), constant_values=-1e9)


def age_outputs(raw: jax.Array, age_head: str) -> dict[str, jax.Array]:
  """The age head's raw outputs (B, units) -> {'age'} or {'age', 'age_logits'}."""
  raw = raw.astype(jnp.float32)
  if age_head == "regression":
    return {"age": raw[:, 0]}
  return {"age": expectation_and_spread(jax.nn.softmax(raw))[0], "age_logits": raw}


def age_and_gender(
  age_branch, gender_branch, x: jax.Array, age_head: str, rngs: nnx.Rngs | None
) -> dict[str, jax.Array]:
  """Both branches over the shared features ``x``: {'age', ('age_logits'), 'gender_logit'}.

  Age first: the branches draw their dropout keys in this order, which the committed runs depend on.
  """
  age = age_outputs(age_branch(x, rngs=rngs), age_head)
  return age | {"gender_logit": gender_branch(x, rngs=rngs)[:, 0].astype(jnp.float32)}


class Head(nnx.Module):
  """Dense layers with ReLU and dropout, then ``units`` outputs, (B, units)."""

  def __init__(
    self, in_features: int, hidden: Sequence[int], dropout: float, *, units: int = 1,
    bias_init=ZEROS, dtype=None, rngs: nnx.Rngs,
  ):  # fmt: skip
    dims = [in_features, *hidden]
    self.layers = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(dims[:-1], dims[1:], strict=True)])
    self.dropout = nnx.Dropout(dropout, deterministic=True)
    self.out = nnx.Linear(dims[-1], units, dtype=dtype, bias_init=bias_init, rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    for layer in self.layers:
      x = self.dropout(jax.nn.relu(layer(x)), rngs=rngs)
    return self.out(x)


class AgeGenderHeads(nnx.Module):
  """Separate age and gender heads over shared pooled features."""

  def __init__(
    self, in_features: int, hidden: Sequence[int], dropout: float, *, age_head: str = "regression", dtype=None,
    rngs: nnx.Rngs,
  ):  # fmt: skip
    self.age_head = age_head
    self.age = Head(
      in_features, hidden, dropout, units=age_units(age_head), bias_init=age_bias_init(age_head), dtype=dtype, rngs=rngs
    )
    self.gender = Head(in_features, hidden, dropout, dtype=dtype, rngs=rngs)

  def __call__(self, features: jax.Array, *, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    return age_and_gender(self.age, self.gender, features, self.age_head, rngs)


class PretrainedNet(nnx.Module):
  """A pooled-feature backbone (ResNet-50, MobileNetV2) with the two heads."""

  def __init__(
    self, backbone: nnx.Module, features: int, hidden: Sequence[int], dropout: float, *, age_head: str = "regression",
    dtype=None, rngs: nnx.Rngs,
  ):  # fmt: skip
    self.backbone = backbone
    self.heads = AgeGenderHeads(features, hidden, dropout, age_head=age_head, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    return self.heads(self.backbone(x), rngs=rngs)
