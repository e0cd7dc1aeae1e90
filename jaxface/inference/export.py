"""A trained model as one portable file: its evaluation-mode forward pass, serialised with ``jax.export``.

The file is a zip of two entries. ``forward.jaxexport``: StableHLO with the
weights inside, lowered for cpu, cuda and tpu, with a symbolic batch
dimension: uint8 face crops (B, size, size, 3) in; ``age`` (years) and
``p_female`` out (and ``age_spread`` from a distribution head).
``meta.json``: what a server says about the model (arch, image size, config,
step, the workdir's provenance and evaluation metrics).
Loading it (``exported.ExportedModel``) needs JAX only, not jaxface's model code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxface.inference import calibration as calib
from jaxface.inference import exported, model, restore

PLATFORMS = ("cpu", "cuda", "tpu")


def model_info(workdir: str | Path, restored: restore.Restored, checkpoint: str, calibration: dict | None) -> dict:
  """Arch, config, checkpoint, provenance (run.json), metrics (eval_*.json) and the calibration in use."""
  workdir = Path(workdir)
  run = workdir / "run.json"
  return {
    "arch": restored.cfg.arch, "image_size": restored.cfg.image_size, "checkpoint": checkpoint,
    "step": restored.step, "config": json.loads(restored.cfg.to_json()),
    "provenance": json.loads(run.read_text()) if run.exists() else None,
    "metrics": {p.stem.removeprefix("eval_"): json.loads(p.read_text()) for p in sorted(workdir.glob("eval_*.json"))},
    "calibration": calibration,
  }  # fmt: skip


def export(workdir: str | Path, out: str | Path, checkpoint: str = "best", tta: str = "none") -> Path:
  """Writes ``out``; returns its path."""
  restored = restore.load(workdir, checkpoint)
  forward = model.InferenceModel(restored, tta=tta).forward
  size = restored.cfg.image_size
  (batch,) = jax.export.symbolic_shape("batch")
  # The weights, closed over, become constants of the module.
  closed = jax.jit(lambda images: forward(restored.params, restored.batch_stats, images))
  exp = jax.export.export(closed, platforms=PLATFORMS)(jax.ShapeDtypeStruct((batch, size, size, 3), jnp.uint8))
  cal, _ = calib.for_model(workdir, restored.step, tta)
  meta = {"format": exported.FORMAT, "tta": tta, "platforms": list(PLATFORMS)}
  meta |= model_info(workdir, restored, checkpoint, cal)
  out = Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_name(f".{out.name}.tmp")
  with zipfile.ZipFile(tmp, "w") as z:
    z.writestr(exported.FORWARD, bytes(exp.serialize()))
    z.writestr(exported.META, json.dumps(meta, indent=1))
  tmp.replace(out)
  return out
