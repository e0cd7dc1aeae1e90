"""``python -m jaxface.bulk INPUT [INPUT ...] [--model FILE | --workdir DIR] --out DIR [--address ADDR]``

Labels the faces of many photos on Ray Data, and writes one Parquet row per
face with the fields of ``python -m jaxface.predict`` (file, status, face,
box, age, age_low, age_high, gender, p_female, score, error) to OUT. INPUT is
a folder (searched recursively), a glob, or a list of paths (.txt, one a
line; or a .csv/.jsonl manifest's 'path' column), on a filesystem that every
node sees. A photo that cannot be read is an error row, not a failed job.
Without --address, Ray runs on this machine; with it, on that cluster
(``ray start --head``, ``ray up`` or KubeRay), the model on its GPUs if it has
any. --workdir exports the model into OUT/_model/ first (hidden from Parquet
readers).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from jaxface import cli, faces, shipped
from jaxface.data import manifest
from jaxface.inference import CHECKPOINTS


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.bulk", description=__doc__.split("\n\n")[1])
  p.add_argument("inputs", nargs="+", metavar="INPUT", help="folders, globs, or lists of paths (.txt, .csv, .jsonl)")
  cli.add_model_flags(p, CHECKPOINTS, faces.DETECTORS)  # --workdir: exported to OUT/_model/ first
  p.add_argument("--out", required=True, help="a folder for the Parquet files (made; must be empty or new)")
  p.add_argument("--address", help="a Ray cluster to run on (default: start one on this machine)")
  p.add_argument("--num-cpus", type=int, help="without --address: the CPUs Ray may use here (default all)")
  p.add_argument("--crop-actors", type=int, help="actors reading, detecting and cropping (default: the free CPUs)")
  p.add_argument("--label-actors", type=int, help="actors running the model (default: one a GPU, or one)")
  p.add_argument("--no-detect", action="store_true", help="each image is already a cropped face")
  args = p.parse_args(argv)
  cli.setup_logging(logging.WARNING)
  out = Path(args.out)
  if out.exists() and not out.is_dir():
    return cli.error(f"--out {out} is a file; give a folder for the records")
  if out.exists() and any(f for f in out.iterdir() if not f.name.startswith(("_", "."))):
    return cli.error(f"{out} is not empty; give a new folder for the records")
  from jaxface.bulk import inputs, job
  from jaxface.inference.predictor import Predictor

  try:
    items = inputs.items(args.inputs)
    model = (
      _export(args.workdir, args.checkpoint, out / "_model") if args.workdir else Path(args.model or shipped.model())
    )
    size = Predictor.from_export(model, detect=False).size  # a bad model file is one line, before Ray starts
    if not args.no_detect:
      faces.ready(args.detector)
    actors = job.plan(job.start(args.address, args.num_cpus), args.crop_actors, args.label_actors)
  except (FileNotFoundError, ValueError, manifest.ManifestError, faces.DetectorError) as e:
    return cli.error(e)
  t = time.perf_counter()
  job.run(
    items, model, out, size=size, detect=not args.no_detect, detector=args.detector, batch_size=args.batch_size,
    actors=actors,
  )  # fmt: skip
  counts = job.counts(out)
  print(
    f"{len(items)} inputs in {time.perf_counter() - t:.1f} s: {counts.get('ok', 0)} faces, "
    f"{counts.get('no_face', 0)} without a face, {counts.get('error', 0)} failed; records in {out}",
    file=sys.stderr,
  )
  return cli.SOME_FAILED if counts.get("error") else cli.OK


def _export(workdir: str, checkpoint: str, where: Path) -> Path:
  from jaxface.inference import export

  return export.export(workdir, where / "model.jaxface", checkpoint)


if __name__ == "__main__":
  cli.run(main)
