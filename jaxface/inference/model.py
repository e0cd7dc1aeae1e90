"""The evaluation-mode forward pass of a restored model, jitted once per input shape."""

from __future__ import annotations

import functools

import jax
from flax import nnx

from jaxface.data import augment
from jaxface.inference.names import TTA
from jaxface.inference.restore import Restored
from jaxface.models import heads, imagenet_normalised
from jaxface.xla import options as xla_options


def _forward(graphdef: nnx.GraphDef, imagenet_norm: bool, tta: str, params, batch_stats, images: jax.Array) -> dict:
  model = nnx.merge(graphdef, params, batch_stats)

  def run(x):
    """{'p_female'} and the age: 'age' (regression) or 'age_probs' (distribution), each averaged over TTA views."""
    out = model(augment.preprocess(x, imagenet_norm=imagenet_norm))
    age = {"age_probs": jax.nn.softmax(out["age_logits"])} if "age_logits" in out else {"age": out["age"]}
    return age | {"p_female": jax.nn.sigmoid(out["gender_logit"])}

  out = run(images)
  if tta == "flip":
    out = jax.tree.map(lambda a, b: (a + b) / 2, out, run(images[:, :, ::-1]))
  if "age_probs" in out:  # the mean of the averaged distribution, and its spread
    age, spread = heads.expectation_and_spread(out.pop("age_probs"))
    out |= {"age": age, "age_spread": spread}
  return out


class InferenceModel:
  """uint8 face crops (B, size, size, 3) -> {'age': years, 'p_female': P(female)}, as device arrays.

  A distribution age head also gives 'age_spread': the predicted distribution's
  standard deviation (years), which scales the calibrated interval.

  One jitted function, compiled once per batch shape and cached by JAX: pad
  to a few fixed batch sizes to keep the compilations few.
  """

  def __init__(self, restored: Restored, tta: str = "none"):
    if tta not in TTA:
      raise ValueError(f"tta must be one of {TTA}, not {tta!r}")
    self.restored = restored
    self.image_size = restored.cfg.image_size
    platform = next(iter(jax.tree.leaves(restored.params)[0].devices())).platform
    # (params, batch_stats, images) -> outputs, unjitted: what jaxface.export serialises.
    self.forward = functools.partial(_forward, restored.graphdef, imagenet_normalised(restored.cfg.arch), tta)
    self._fn = jax.jit(self.forward, compiler_options=xla_options.compiler_options(platform))

  def __call__(self, images) -> dict[str, jax.Array]:
    return self._fn(self.restored.params, self.restored.batch_stats, images)
