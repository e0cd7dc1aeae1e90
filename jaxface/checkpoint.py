"""Orbax behind one small wrapper: train state + data iterator state per epoch.

Keeps the last two checkpoints and the best by validation age MAE.
"""

from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

KEEP_LAST = 2
BEST_METRIC = "val_age_mae"


class Checkpointer:
  def __init__(self, directory: str | Path):
    policy = cm.AnyPreservationPolicy(
      [
        cm.LatestN(KEEP_LAST),
        cm.BestN(get_metric_fn=lambda m: m[BEST_METRIC], reverse=True, n=1),  # reverse: lowest MAE is best
      ]
    )
    self.mngr = ocp.CheckpointManager(
      Path(directory).absolute(),
      options=ocp.CheckpointManagerOptions(preservation_policy=policy, enable_async_checkpointing=True),
    )

  def latest_step(self) -> int | None:
    return self.mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.mngr.all_steps())

  def save(self, step: int, state, data_state: dict, metrics: dict) -> None:
    self.mngr.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)),
      metrics=metrics,
    )

  def restore(self, step: int, abstract_state) -> tuple:
    """(state, data_state); ``abstract_state`` carries the shapes and target shardings."""
    r = self.mngr.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore())
    )
    return r["state"], r["data"]

  def close(self) -> None:
    self.mngr.wait_until_finished()
    self.mngr.close()
