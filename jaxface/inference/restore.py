"""A trained model back from its workdir, for inference: config.json and one checkpoint's weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
from flax import nnx

from jaxface.checkpoint import Checkpointer
from jaxface.config import Config
from jaxface.inference.names import CHECKPOINTS
from jaxface.models import from_config, mode


@dataclasses.dataclass
class Restored:
  cfg: Config
  graphdef: nnx.GraphDef  # evaluation mode: dropout off, running batch statistics
  params: nnx.State
  batch_stats: nnx.State
  step: int


def abstract_model(cfg: Config) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
  """The evaluation-mode graph and the shapes of its weights, without initialising anything."""
  model = nnx.eval_shape(lambda: from_config(cfg))
  return nnx.split(mode(model, train=False), nnx.Param, nnx.BatchStat)


def load(workdir: str | Path, which: str = "best", device: jax.Device | None = None) -> Restored:
  """The weights of checkpoint ``which`` ('best': lowest validation age MAE; 'last') on ``device``.

  The target sharding is this process's device, so a model trained on any
  number of devices restores on one.
  """
  if which not in CHECKPOINTS:
    raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, not {which!r}")
  workdir = Path(workdir)
  cfg = Config.load(workdir)
  graphdef, params, batch_stats = abstract_model(cfg)
  target = jax.sharding.SingleDeviceSharding(device or jax.devices()[0])
  abstract = jax.tree.map(
    lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=target), {"params": params, "batch_stats": batch_stats}
  )
  ckpt = Checkpointer(workdir / "checkpoints", read_only=True)
  try:
    step = ckpt.best_step() if which == "best" else ckpt.latest_step()
    if step is None:
      raise FileNotFoundError(f"{workdir}: no checkpoints in {workdir / 'checkpoints'}; train first")
    try:
      weights = ckpt.restore_weights(step, abstract)
    except Exception as e:  # TensorStore and Orbax raise several types for damaged files
      raise ValueError(
        f"checkpoint {step} in {workdir / 'checkpoints'} cannot be read ({type(e).__name__}: {str(e)[:300]}); "
        f"try --checkpoint {'last' if which == 'best' else 'best'}, or resume training to replace it"
      ) from None
  finally:
    ckpt.close()
  return Restored(cfg, graphdef, weights["params"], weights["batch_stats"], step)


def model_info(workdir: str | Path, restored: Restored, checkpoint: str, calibration: dict | None) -> dict:
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
