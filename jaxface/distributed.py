"""Multi-host start-up: ``jax.distributed``, auto-detected on a cluster or given explicitly.

Every process runs the same command; JAX's multi-controller runtime then
makes the devices of all of them one mesh (``sharding.data_mesh``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

import jax

from jaxface import cli, sharding


def add_flags(p: argparse.ArgumentParser) -> None:
  g = p.add_argument_group("multi-host (README: Running on many hosts)")
  g.add_argument(
    "--distributed", action="store_true",
    help="call jax.distributed.initialize() with what the cluster provides (Cloud TPU pods, SLURM, Open MPI)",
  )  # fmt: skip
  g.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address and a free port, on every process")
  g.add_argument("--num-processes", type=int, metavar="N", help="with --coordinator: how many processes in all")
  g.add_argument("--process-id", type=int, metavar="I", help="with --coordinator: this process, 0..N-1")
  g.add_argument(
    "--join-timeout", type=float, default=300, metavar="S",
    help="with several processes: stop, saying so, when the others have not all joined within S s (default %(default)s)",
  )  # fmt: skip
  g.add_argument(
    "--stall-timeout", type=float, default=1800, metavar="S",
    help="with several processes: stop every process when a run makes no progress for S seconds (a collective that "
    "one process never joined), instead of waiting for ever; 0: never (default %(default)s)",
  )  # fmt: skip


def initialize(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
  """Joins the job (before any other JAX call); a usage error when the explicit flags are incomplete."""
  explicit = {"--coordinator": args.coordinator, "--num-processes": args.num_processes, "--process-id": args.process_id}
  given = [k for k, v in explicit.items() if v is not None]
  if given and len(given) < len(explicit):
    p.error(f"{', '.join(given)} given without {', '.join(k for k in explicit if k not in given)}: give all three")
  if given:
    if args.num_processes < 1 or not 0 <= args.process_id < args.num_processes:
      p.error(f"--process-id {args.process_id} is not in 0..{args.num_processes - 1} (--num-processes)")
    where = f"coordinator {args.coordinator}, {args.num_processes} processes"
    with _joined_within(args.join_timeout, where):
      jax.distributed.initialize(
        coordinator_address=args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
        initialization_timeout=int(args.join_timeout) + 60,
      )  # fmt: skip
  elif args.distributed:
    with _joined_within(args.join_timeout, "the cluster's coordinator"):
      jax.distributed.initialize(initialization_timeout=int(args.join_timeout) + 60)


def leave() -> None:
  """Every process waits for the others, then the job is shut down while every thread is still alive.

  Left to interpreter exit, a process that ended first could tear the job down under another still in its last
  collective, which then aborted in native code.
  """
  if jax.process_count() > 1:
    sharding.barrier("jaxface_train_done")
    jax.distributed.shutdown()


class _joined_within:
  """Ends the process with one line when the job is not joined in time.

  JAX's own join timeout (set later, as a backstop) aborts the process with a native stack trace.
  """

  def __init__(self, seconds: float, where: str):
    self.seconds, self.where = seconds, where

  def _late(self) -> None:
    print(
      f"error: the job did not come together within {self.seconds:g} s ({self.where}): start every process with "
      "the same --coordinator and --num-processes, each with its own --process-id (--join-timeout sets the wait)",
      file=sys.stderr, flush=True,
    )  # fmt: skip
    os._exit(cli.ERROR)  # the main thread is inside the native join: only an exit ends it

  def __enter__(self):
    self.timer = threading.Timer(self.seconds, self._late)
    self.timer.daemon = True
    self.timer.start()

  def __exit__(self, *exc):
    self.timer.cancel()
