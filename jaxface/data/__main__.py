"""``python -m jaxface.data --data PATH [--dataset subset5000|full]``

Prepares a dataset (once; later calls reuse it) and prints one JSON object:
examples, gender and age-band counts per split, duplicate groups and how they
were handled, and the skipped files with reasons. PATH is the UTKFace archive
or folder, or a manifest (.csv or .jsonl; see jaxface.data.manifest). With
--layout, PATH is a dataset in its native layout: it is first written out as
the manifest --write-manifest. With --mix, several manifests are written out
as one (each row keeping its source, or taking its manifest's name), which is
then built: train on it with --source-weights to sample each source at a rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time

from jaxface import cli, provenance
from jaxface.data import collection, layouts, manifest, prepare, source
from jaxface.data.splits import DATASETS


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxface.data", description=__doc__.split("\n\n")[1])
  p.add_argument(
    "--data",
    help=f"UTKFace.tar.gz, the UTKFace/ folder, or a manifest .csv/.jsonl (default: ${source.ENV_VAR}, then TFDS's manual folder)",
  )
  p.add_argument("--dataset", "--config", default="subset5000", choices=DATASETS, help="split config")
  p.add_argument("--image-size", type=int, default=128, help="stored resolution, pixels square (default 128)")
  p.add_argument("--crop", default="detect", choices=collection.CROPS, help="a manifest's crop policy (default detect)")
  p.add_argument("--layout", choices=sorted(layouts.LAYOUTS), help="--data is a dataset in this native layout")
  p.add_argument("--mix", nargs="+", metavar="MANIFEST", help="manifests to write out as one (--write-manifest)")
  p.add_argument(
    "--write-manifest", metavar="OUT", help="with --layout or --mix: the manifest to write (.csv or .jsonl)"
  )
  p.add_argument("--tfds-dir", help="TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  p.add_argument("--rebuild", action="store_true", help="build again even if prepared")
  args = p.parse_args(argv)
  if args.layout and not (args.data and args.write_manifest):
    p.error("--layout needs --data (the dataset's folder) and --write-manifest (the manifest to write)")
  if args.mix and (args.layout or args.data or not args.write_manifest):
    p.error("--mix takes manifests and --write-manifest (the manifest to write), without --layout or --data")
  cli.setup_logging()
  t0 = time.perf_counter()
  run = provenance.record(device=False)
  imported = None
  try:
    data = args.data
    if args.layout:
      imported = layouts.import_layout(args.layout, args.data, args.write_manifest)
      logging.info(
        "Wrote %d rows of %s to %s (%s)", imported["rows"], args.layout, args.write_manifest, imported["licence"]
      )
      data = args.write_manifest
    if args.mix:
      imported = {"mixed": manifest.combine(args.mix, args.write_manifest), "manifest": args.write_manifest}
      data = args.write_manifest
    with contextlib.redirect_stdout(sys.stderr):  # TFDS prints progress; stdout is the JSON alone
      b = prepare.prepare(data, args.dataset, args.image_size, args.tfds_dir, rebuild=args.rebuild, crop=args.crop)
  except (source.DataNotFoundError, ValueError) as e:  # ManifestError, LayoutError and DataError among them
    return cli.error(e)
  out = {**prepare.summary(b), **({"imported": imported} if imported else {})}
  print(json.dumps({**out, "run": {**run, "wall_s": round(time.perf_counter() - t0, 2)}}, indent=2))
  return 0


if __name__ == "__main__":
  cli.run(main)
