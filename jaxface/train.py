"""python -m jaxface.train --arch custom|resnet50|mobilenet_v2 [--preset classic|cpu] --workdir DIR [--FIELD VALUE ...]

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
import signal
import sys

import jax

from jaxface import config as config_lib
from jaxface import distributed
from jaxface.data import source
from jaxface.training import trainer, workdir_lock


def parse_args(argv: list[str] | None = None) -> tuple[config_lib.Config, str]:
  p = argparse.ArgumentParser(prog="python -m jaxface.train", description=__doc__.split("\n\n")[1])
  p.add_argument("--workdir", required=True)
  config_lib.add_flags(p)
  distributed.add_flags(p)
  args = p.parse_args(argv)
  distributed.initialize(args, p)
  return config_lib.from_flags(args), args.workdir


def _interrupt(signum, frame):
  raise KeyboardInterrupt(f"signal {signum}")  # unwinds like Ctrl-C: the checkpoint in flight is waited for


def _log_to_stderr() -> None:
  # force: an imported library may have configured the root logger already, and our info lines would vanish
  speaker = f"[process {jax.process_index()}/{jax.process_count()}] " if jax.process_count() > 1 else ""
  fmt = f"%(asctime)s %(levelname)s {speaker}%(message)s"
  logging.basicConfig(level=logging.INFO, format=fmt, stream=sys.stderr, force=True)
  for noisy in ("absl", "jax._src.xla_bridge", "orbax"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
  signal.signal(signal.SIGTERM, _interrupt)
  try:
    cfg, workdir = parse_args(argv)  # first: jax.distributed.initialize() must come before any other JAX call
    _log_to_stderr()
    logging.info("Config: %s", json.dumps(dataclasses.asdict(cfg)))
    trainer.train(cfg, workdir)
  except (source.DataNotFoundError, trainer.NonFiniteLossError, workdir_lock.WorkdirBusyError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("interrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
