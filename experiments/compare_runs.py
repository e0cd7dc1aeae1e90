"""Do two training runs (or a run and a committed result) give the same numbers, epoch by epoch, to the digit?

  python experiments/compare_runs.py A B [A B ...] --out FILE

Each A and B is a workdir or a results folder holding history.json (and run.json, whose commit is reported). Every
metric of the epochs both have is compared exactly; the times and speeds are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxface import files, provenance  # noqa: E402

NOT_COMPARED = {"epoch_time_s", "train_time_s", "images_per_s", "input_wait_frac"}


def _run(d: Path) -> dict:
  history = json.loads((d / "history.json").read_text())
  run = json.loads((d / "run.json").read_text()) if (d / "run.json").exists() else {}
  return {"path": str(d), "git_commit": run.get("git_commit"), "command": run.get("command"), "history": history}


def compare(a: Path, b: Path) -> dict:
  ra, rb = _run(a), _run(b)
  epochs = []
  for x, y in zip(ra["history"], rb["history"], strict=False):
    keys = sorted(set(x) & set(y) - NOT_COMPARED)
    epochs.append(
      {"epoch": x["epoch"], "numbers": len(keys), "differ": {k: [x[k], y[k]] for k in keys if x[k] != y[k]}}
    )
  return {
    "a": {k: ra[k] for k in ("path", "git_commit", "command")}, "b": {k: rb[k] for k in ("path", "git_commit", "command")},
    "epochs": epochs, "same_to_the_digit": bool(epochs) and not any(e["differ"] for e in epochs),
  }  # fmt: skip


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("dirs", nargs="+", help="pairs of workdirs or results folders")
  p.add_argument("--out", required=True)
  p.add_argument("--note", default="", help="how the runs were made, where their run.json does not say")
  args = p.parse_args(argv)
  if len(args.dirs) % 2:
    p.error("give the folders in pairs")
  t0 = time.perf_counter()
  pairs = [compare(Path(a), Path(b)) for a, b in zip(args.dirs[::2], args.dirs[1::2], strict=True)]
  result = {"pairs": pairs, "note": args.note, **provenance.record(time.perf_counter() - t0, device=False)}
  files.write_json(args.out, result)
  for pair in pairs:
    print("same " if pair["same_to_the_digit"] else "DIFFER", pair["a"]["path"], pair["b"]["path"],
          [e["epoch"] for e in pair["epochs"]])  # fmt: skip
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
