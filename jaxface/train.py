"""``python -m jaxface.train --arch ARCH [--preset classic|cpu] --workdir DIR [--FIELD VALUE ...]``

Trains on utk_face with a jitted, data-parallel step over every device of the
chosen platform (``jaxface.training.trainer``). Every field of the config is a
flag; the preset fills those not given. Rerunning with the same workdir
resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import traceback

import jax

from jaxface import checkpoint, cli, distributed
from jaxface import config as config_lib
from jaxface.data import source
from jaxface.training import guard, trainer, workdir_lock


def parse_args(argv: list[str] | None = None) -> tuple[config_lib.Config, argparse.Namespace]:
  p = argparse.ArgumentParser(prog="python -m jaxface.train", description=__doc__.split("\n\n")[1])
  p.add_argument("--workdir", required=True)
  p.add_argument(
    "--restart-if-damaged", action="store_true",
    help="when every checkpoint in the workdir is damaged, start again from scratch (without it, the run stops)",
  )  # fmt: skip
  config_lib.add_flags(p)
  distributed.add_flags(p)
  args = p.parse_args(argv)
  distributed.initialize(args, p)
  return config_lib.from_flags(args), args


def main(argv: list[str] | None = None) -> int:
  guard.start()  # signals end even a stuck run
  try:
    cfg, args = parse_args(argv)  # first: jax.distributed.initialize() must come before any other JAX call
    guard.start(args.stall_timeout, multi=jax.process_count() > 1)  # again: initialize() installs a SIGTERM handler
    speaker = f"[process {jax.process_index()}/{jax.process_count()}] " if jax.process_count() > 1 else ""
    cli.setup_logging(prefix=speaker, timestamps=True)
    logging.info("Config: %s", json.dumps(dataclasses.asdict(cfg)))
    trainer.train(cfg, args.workdir, restart_if_damaged=args.restart_if_damaged)
    distributed.leave()
  except (
    source.DataNotFoundError, trainer.NonFiniteLossError, workdir_lock.WorkdirBusyError, ValueError,
    checkpoint.CheckpointReadError, checkpoint.DamagedCheckpointsError,
    OSError,  # a full disk, a permission, a vanished mount: the machine's state, said in one line
  ) as e:  # fmt: skip
    return _failed(cli.ERROR, f"error: {e}")
  except KeyboardInterrupt:
    return _failed(cli.INTERRUPTED, "interrupted; rerun the same command to resume from the last checkpoint")
  except Exception as e:
    if jax.process_count() <= 1:
      raise
    traceback.print_exc()
    return _failed(cli.ERROR, f"error: {type(e).__name__}: {e}")
  return cli.OK


def _failed(code: int, line: str) -> int:
  print(line, file=sys.stderr, flush=True)
  # A failed save leaves Orbax's tasks unfinished, and asyncio logs each at exit: noise after the line that matters.
  logging.getLogger("asyncio").setLevel(logging.CRITICAL)
  guard.exit_everywhere(code, line.removeprefix("error: "))  # the other processes stop too (returns in one process)
  return code


if __name__ == "__main__":
  cli.run(main)
