"""Orbax behind one small wrapper: per epoch, the train state, each process's data iterator, and the metrics.

Keeps the last two checkpoints and the best by validation age MAE
(``metrics.BEST_METRIC``), which is stored with each checkpoint: "best" is
chosen by Orbax from those metrics, the same way for keeping and restoring.
Each process saves its own iterator position (grain's handler writes
``process_<i>-of-<n>.json``), so every host resumes where it stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from jaxface import metrics

KEEP_LAST = 2


class IncompatibleCheckpointError(ValueError):
  """A readable checkpoint that this run cannot resume from."""


def _best_metric(m: dict) -> float:
  return m[metrics.BEST_METRIC]


class Checkpointer:
  def __init__(self, directory: str | Path, *, read_only: bool = False):
    policy = cm.AnyPreservationPolicy(
      [cm.LatestN(KEEP_LAST), cm.BestN(get_metric_fn=_best_metric, reverse=True, n=1)]  # reverse: lowest is best
    )
    self.directory = Path(directory).absolute()
    self.mngr = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        preservation_policy=policy, best_fn=_best_metric, best_mode="min", enable_async_checkpointing=not read_only,
        read_only=read_only,
      ),
    )  # fmt: skip

  def latest_step(self) -> int | None:
    return self.mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.mngr.all_steps())

  def best_step(self) -> int | None:
    """The kept step with the lowest validation age MAE (the latest where none has metrics)."""
    best = self.mngr.best_step()
    return self.latest_step() if best is None else best

  def save(self, step: int, state, data_iter: grain.DatasetIterator | None, meta: dict, step_metrics: dict) -> None:
    """``data_iter``: the stream input's iterator (None for device-resident input, whose position is the epoch)."""
    items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
    if data_iter is not None:
      items["data"] = grain.checkpoint.CheckpointSave(data_iter)
    self.mngr.save(step, args=ocp.args.Composite(**items), metrics=step_metrics)

  def restore(self, step: int, abstract_state, data_iter: grain.DatasetIterator | None) -> tuple:
    """(state, meta); ``abstract_state`` carries the shapes and target shardings; ``data_iter`` is set in place."""
    items = {"state": ocp.args.StandardRestore(abstract_state), "meta": ocp.args.JsonRestore()}
    if data_iter is not None:
      if "data" not in (self.mngr.item_metadata(step) or {}):
        raise IncompatibleCheckpointError(
          f"checkpoint {step} in {self.directory} holds no data iterator: it was trained with --input device; "
          "resume it with --input device"
        )
      saved = sorted(p.name for p in (self.directory / str(step) / "data").glob("process_*-of-*.json"))
      if saved and not saved[0].endswith(f"-of-{jax.process_count()}.json"):
        raise IncompatibleCheckpointError(
          f"checkpoint {step} in {self.directory} holds the stream input's position of each of "
          f"{saved[0].rsplit('-of-', 1)[1].removesuffix('.json')} processes, and this run has {jax.process_count()}: "
          "resume it with that many processes (--input device resumes on any count; a new --workdir starts afresh)"
        )
      items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
    r = self.mngr.restore(step, args=ocp.args.Composite(**items))
    return r["state"], r["meta"]

  def restore_latest(self, abstract_state, data_iter: grain.DatasetIterator | None) -> tuple[int, object, dict] | None:
    """(step, state, meta) of the newest checkpoint that can be read, or None when there is none.

    A checkpoint that cannot be read (a truncated file, say) is set aside as
    ``<step>.unreadable``, with a warning, and the one before it is tried.
    """
    skipped = False
    for step in sorted(self.all_steps(), reverse=True):
      try:
        state, meta = self.restore(step, abstract_state, data_iter)
      except IncompatibleCheckpointError:
        raise
      except Exception as e:  # TensorStore and Orbax raise several types for damaged files
        aside = self.directory / f"{step}.unreadable"
        (self.directory / str(step)).rename(aside)
        self.mngr.reload()
        logging.warning("checkpoint %d cannot be read (%s: %.300s); set aside as %s", step, type(e).__name__, e, aside)
        skipped = True
        continue
      if skipped:
        logging.warning("resuming from step %d, the newest checkpoint that can be read", step)
      return step, state, meta
    return None

  def wait(self) -> None:
    """Until the save in flight is on disk."""
    self.mngr.wait_until_finished()

  def restore_weights(self, step: int, abstract_weights: dict) -> dict:
    """Only ``params`` and ``batch_stats`` (as in ``abstract_weights``, with its target shardings): for inference."""
    restore_args = ocp.checkpoint_utils.construct_restore_args(abstract_weights)
    r = self.mngr.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.PyTreeRestore(abstract_weights, restore_args=restore_args, partial_restore=True)
      ),
    )
    return r["state"]

  def close(self) -> None:
    self.mngr.wait_until_finished()
    self.mngr.close()
