"""A trained model back from its workdir: config.json + an Orbax checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax

from jaxface import checkpoint, steps
from jaxface.config import Config


@dataclasses.dataclass
class Restored:
  cfg: Config
  mdef: steps.ModelDef
  params: object
  rest: object
  step: int


def pick_step(workdir: Path, ckpt: checkpoint.Checkpointer, which: str) -> int:
  """'last', or 'best' (lowest validation age MAE among the kept checkpoints, from history.json)."""
  kept = ckpt.all_steps()
  if not kept:
    raise FileNotFoundError(f"{workdir}: no checkpoints in {workdir / 'checkpoints'}; train first")
  if which == "last":
    return max(kept)
  if which != "best":
    raise ValueError(f"--checkpoint must be best or last, not {which!r}")
  history = json.loads((workdir / "history.json").read_text())
  scored = [(h["val_age_mae"], h["step"]) for h in history if h["step"] in kept]
  return min(scored)[1] if scored else max(kept)


def load(workdir: str | Path, which: str = "best") -> Restored:
  workdir = Path(workdir)
  if not (workdir / "config.json").exists():
    raise FileNotFoundError(f"{workdir}: no config.json; is this a jaxface training workdir?")
  cfg = Config.load(workdir)
  # The checkpoint holds every weight: build the bare model, no pretrained file needed.
  mdef, params, rest = steps.init_model(dataclasses.replace(cfg, pretrained=None, freeze_until=0))
  tx = steps.make_optimizer(cfg, 1)
  abstract = jax.eval_shape(lambda: steps.init_state(params, rest, tx, cfg.seed))
  ckpt = checkpoint.Checkpointer(workdir / "checkpoints")
  step = pick_step(workdir, ckpt, which)
  state, _ = ckpt.restore(step, abstract)
  ckpt.close()
  return Restored(cfg, mdef, state["params"], state["rest"], step)
