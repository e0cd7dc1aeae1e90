"""XLA compiler options for jaxface's jitted functions, per function and per platform, never process-wide.

jaxlib 0.10's XLA:CPU hands convolutions to YNNPACK (its default library-fusion list is
individual convolutions, individual dots and reductions). On this project's 2-core AVX2 CPUs,
Eigen's convolutions make the train step 1.7-3.5x faster with the same numbers
(benchmarks/results/train_jax_cpu_xla_flags.json), so on CPU jaxface leaves convolutions out of
that list. The enum names belong to jaxlib 0.10: other versions, and every accelerator, get no
options. Setting ``--xla_cpu_experimental_ynn_fusion_type`` in XLA_FLAGS yourself turns this off
(``=+individual_convolution`` restores XLA's default).
"""

from __future__ import annotations

import os

import jaxlib

CPU_CONV_OFF_YNNPACK = {
  "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
}


def compiler_options(platform: str) -> dict | None:
  """What to pass as ``jax.jit(..., compiler_options=...)`` for a function compiled for ``platform``."""
  if platform != "cpu" or not jaxlib.__version__.startswith("0.10."):
    return None
  if any(k in os.environ.get("XLA_FLAGS", "") for k in CPU_CONV_OFF_YNNPACK):
    return None  # the user's own setting wins
  return dict(CPU_CONV_OFF_YNNPACK)
