"""The two outputs every jaxface model ends in: age (years) and a gender logit (female = 1)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

# Mean age of UTKFace (33 years): starting the age output there spares the first
# epochs from learning a constant, and keeps the 0.1 * MSE term from swamping BCE.
AGE_BIAS_INIT = 33.0


class Head(nnx.Module):
  """Dense layers with ReLU and dropout, then one output unit."""

  def __init__(
    self, in_features: int, hidden: Sequence[int], dropout: float, *, out_bias: float = 0.0, dtype=None, rngs: nnx.Rngs
  ):
    dims = [in_features, *hidden]
    self.layers = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(dims[:-1], dims[1:], strict=True)])
    self.dropout = nnx.Dropout(dropout, deterministic=True)
    self.out = nnx.Linear(dims[-1], 1, dtype=dtype, bias_init=nnx.initializers.constant(out_bias), rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    for layer in self.layers:
      x = self.dropout(jax.nn.relu(layer(x)), rngs=rngs)
    return self.out(x)[:, 0].astype(jnp.float32)


class AgeGenderHeads(nnx.Module):
  """Separate age and gender heads over shared pooled features."""

  def __init__(self, in_features: int, hidden: Sequence[int], dropout: float, *, dtype=None, rngs: nnx.Rngs):
    self.age = Head(in_features, hidden, dropout, out_bias=AGE_BIAS_INIT, dtype=dtype, rngs=rngs)
    self.gender = Head(in_features, hidden, dropout, dtype=dtype, rngs=rngs)

  def __call__(self, features: jax.Array, *, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    return {"age": self.age(features, rngs=rngs), "gender_logit": self.gender(features, rngs=rngs)}


class PretrainedNet(nnx.Module):
  """A pooled-feature backbone (ResNet-50, MobileNetV2) with the two heads."""

  def __init__(
    self, backbone: nnx.Module, features: int, hidden: Sequence[int], dropout: float, *, dtype=None, rngs: nnx.Rngs
  ):
    self.backbone = backbone
    self.heads = AgeGenderHeads(features, hidden, dropout, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    return self.heads(self.backbone(x), rngs=rngs)
