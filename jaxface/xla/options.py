"""XLA compiler options for jaxface's jitted functions, per function and per platform, never process-wide.

jaxlib 0.10's XLA:CPU hands convolutions and dots to YNNPACK (its default library-fusion list is
individual convolutions, individual dots and reductions). On CPU jaxface keeps only the reductions there:
- convolutions: on this project's 2-core CPUs, Eigen's make the train step 1.3-3.5x faster
  (benchmarks/results/train_jax_cpu_xla_flags*.json), and YNNPACK's gradients were ~1e-3 off float64
  on AVX512-BF16 hosts (benchmarks/results/xla_cpu_precision.json);
- dots: the same rounding on those hosts once ResNet-50's small convolutions became dots (``jaxface.conv``),
  which tests/test_xla_options.py bounds; Eigen's dots run the train steps at the same speed.
The enum names belong to jaxlib 0.10: other versions, and every accelerator, get no options. Setting
``--xla_cpu_experimental_ynn_fusion_type`` in XLA_FLAGS yourself turns this off
(``=+individual_convolution,+individual_dot`` restores XLA's default).
"""

from __future__ import annotations

import os

import jaxlib

CPU_OFF_YNNPACK = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}


def compiler_options(platform: str) -> dict | None:
  """What to pass as ``jax.jit(..., compiler_options=...)`` for a function compiled for ``platform``."""
  if platform != "cpu" or not jaxlib.__version__.startswith("0.10."):
    return None
  if any(k in os.environ.get("XLA_FLAGS", "") for k in CPU_OFF_YNNPACK):
    return None  # the user's own setting wins
  return dict(CPU_OFF_YNNPACK)
