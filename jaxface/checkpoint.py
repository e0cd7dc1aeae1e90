"""Orbax behind one small wrapper: per epoch, the train state, each process's data iterator, and the metrics.

Keeps the last two checkpoints and the best by validation age MAE
(``metrics.BEST_METRIC``), which is stored with each checkpoint: "best" is
chosen by Orbax from those metrics, the same way for keeping and restoring.
Each process saves its own iterator position (grain's handler writes
``process_<i>-of-<n>.json``), so every host resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from jaxface import metrics, sharding

KEEP_LAST = 2


class IncompatibleCheckpointError(ValueError):
  """A readable checkpoint that this run cannot resume from."""


class CheckpointReadError(RuntimeError):
  """A checkpoint that could not be read for a reason other than damage (an I/O error, memory, a format change)."""


class DamagedCheckpointsError(RuntimeError):
  """Every checkpoint is damaged: starting again from scratch needs the user's say."""


# TensorStore's status codes for a file that is missing, shorter than its index says, or that does not decode.
_DAMAGE_CODES = ("NOT_FOUND:", "DATA_LOSS:", "OUT_OF_RANGE:")


def damaged(e: BaseException) -> bool:
  """Whether ``e`` is a recognised sign of a damaged checkpoint: a missing or truncated file, bytes that do not decode.

  Anything else (a transient filesystem error, out of memory, a library that changed its format) is not: setting
  the step aside for it would quietly restart training from an older step.
  """
  if isinstance(e, FileNotFoundError | json.JSONDecodeError):
    return True
  return isinstance(e, ValueError) and str(e).startswith(_DAMAGE_CODES)


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

  def restore_latest(
    self, abstract_state, data_iter: grain.DatasetIterator | None, *, restart_if_damaged: bool = False
  ) -> tuple[int, object, dict] | None:
    """(step, state, meta) of the newest checkpoint that can be read, or None when there is none.

    A damaged checkpoint (``damaged``) is set aside as ``<step>.unreadable``,
    with a warning, and the one before it is tried. Any other error stops the
    run (``CheckpointReadError``), setting nothing aside. When every checkpoint
    is damaged, starting from scratch needs ``restart_if_damaged``. With several
    processes, every one tries each step, and process 0 sets it aside only when
    none failed otherwise, so all resume from the same step.
    """
    skipped = False
    for step in sorted(self.all_steps(), reverse=True):
      result, error = None, None
      try:
        result = self.restore(step, abstract_state, data_iter)
      except IncompatibleCheckpointError:
        raise
      except Exception as e:  # noqa: BLE001 (sorted below, into damage and the rest)
        error = e
      outcome = 0 if error is None else 1 if damaged(error) else 2
      worst = _worst_over_processes(outcome)
      if worst == 2:
        cause = (
          f"{type(error).__name__}: {str(error)[:500]}" if error is not None else "another process could not read it"
        )
        raise CheckpointReadError(
          f"checkpoint {step} in {self.directory} could not be read ({cause}). This is not a sign of a damaged "
          "checkpoint, so nothing was set aside: fix the cause and rerun to resume"
        ) from error
      if worst == 1:
        aside = self.directory / f"{step}.unreadable"
        for i in range(2, 1000):  # a step of a restarted run may have been set aside before
          if not aside.exists():
            break
          aside = self.directory / f"{step}.unreadable.{i}"
        if jax.process_index() == 0:
          (self.directory / str(step)).rename(aside)
        sharding.barrier(f"jaxface:set-aside-{step}")
        self.mngr.reload()
        logging.warning("checkpoint %d is damaged (%s); set aside as %s", step, _short(error), aside)
        skipped = True
        continue
      if skipped:
        logging.warning("resuming from step %d, the newest checkpoint that can be read", step)
      return (step, *result)
    aside = sorted(p.name for p in self.directory.glob("*.unreadable"))
    if aside and not restart_if_damaged:
      raise DamagedCheckpointsError(
        f"every checkpoint in {self.directory} is damaged (set aside: {', '.join(aside)}). Rerun with "
        "--restart-if-damaged to start this run again from scratch, or train in a new --workdir"
      )
    if aside:
      logging.warning("every checkpoint in %s is damaged; starting from scratch (--restart-if-damaged)", self.directory)
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

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, kind, error, tb) -> None:
    """Waits for the save in flight, whatever ends the run; when an error ends it, that error is the one reported
    (a full disk fails the save too, and its error would otherwise replace the first)."""
    try:
      self.close()
    except Exception as e:
      if error is None:
        raise
      logging.error("the checkpoint being saved failed as well: %s", _short(e))


def _short(e: BaseException | None) -> str:
  return "another process could not read it" if e is None else f"{type(e).__name__}: {str(e)[:300]}"


def _worst_over_processes(outcome: int) -> int:
  """The largest of every process's ``outcome`` (itself, in a single process)."""
  if jax.process_count() == 1:
    return outcome
  from jax.experimental import multihost_utils

  return int(np.max(multihost_utils.process_allgather(np.int32(outcome))))
