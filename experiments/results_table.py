"""The results tables, generated from experiments/results/ so they cannot drift.

  python experiments/results_table.py            # print the full table
  python experiments/results_table.py --write    # rewrite both (between their markers)
  python experiments/results_table.py --check    # exit 1 if either is stale (the tests run this)

The full table, in docs/experiments.md: one row per eval_<split>.json under
experiments/results/<experiment>/<model>/, with the training run's run.json
(device, commit, wall time) beside it (for a released model, the
conversion's run.json: nothing was trained); then one row per released peer
model run by benchmarks/peers.py (benchmarks/results/peers/). The README's:
the best row (lowest age MAE) per model and data split, and the peers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxface.figures import age_head_label  # noqa: E402
from jaxface.provenance import short_commit  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
PEERS = ROOT / "benchmarks" / "results" / "peers"
STARTS = {
  "resnet50": "ImageNet",
  "mobilenet_v2": "ImageNet",
  "cydral": "face",
  "faceres": "face",
  "faceres_deep": "face",
  "mobilefacenet": "face",
}  # --pretrained
PEER_NAMES = {
  "cydral": "Cydral age-and-gender 2.0.0 (onnxruntime, its own dlib chips)",
  "faceres": "HSE FaceRes as @vladmandic/human 3.3.6 runs it (its resize, RGB, its age reading)",
}


def _device(run: dict) -> str:
  dev = run["device"]
  if dev is None or dev["platform"] == "cpu":
    return f"CPU, {run['machine']['cpu_count']} cores"
  return f"{dev['count']}x {dev['kind']}"


def peer_rows() -> list[str]:
  out = []
  for path in sorted(PEERS.glob("*.json")):
    r = json.loads(path.read_text())
    rel = path.relative_to(ROOT)
    mae = f"{r['age_mae']:.2f}"
    for key in (k for k in r if k.startswith("age_mae_le")):  # a peer whose ages stop short of UTKFace's
      mae += f" ({r[key]['age_mae']:.2f} on ages <= {key.removeprefix('age_mae_le')})"
    out.append(
      f"| peers | {PEER_NAMES.get(r['peer'], r['peer'])} | as released | released, no training |"
      f" {r['dataset']} / {r['split']} (n={r['n']}) | {mae} | {r['cs5']:.3f} | {100 * r['gender_acc']:.1f}% | — |"
      f" {_device(r)} | — | `{short_commit(r['git_commit'])}` | `{rel}` |"
    )
  return out


README = ROOT / "README.md"
FULL = ROOT / "docs" / "experiments.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SHORT_HEAD = (
  "| model | data / split | age MAE (years) | gender acc. | 90 % age interval | preset | experiment |\n"
  "| --- | --- | --- | --- | --- | --- | --- |"
)


def rows(best: bool = False) -> list[str]:
  """The full table's rows; with ``best``, the README's (the lowest age MAE per model and data split)."""
  out, short = [], {}
  for ev_path in sorted(RESULTS.glob("*/*/eval_*.json")):
    d = ev_path.parent
    ev = json.loads(ev_path.read_text())
    cfg = json.loads((d / "config.json").read_text())
    run = json.loads((d / "run.json").read_text())
    device = _device(run)
    released = cfg["preset"] == "released"
    start = STARTS.get(cfg["arch"], "?")
    model = cfg["arch"] + (" (no training)" if released else f" ({start}-pretrained)" if cfg.get("pretrained") else "")
    data = f"{cfg['dataset']} / {ev['split']} (n={ev['n']})"
    wall = "—" if released else f"{run['wall_s'] / 60:.0f} min" if run.get("wall_s") else "?"
    tta = "" if ev.get("tta", "none") == "none" else f" ({ev['tta']} TTA)"
    iv = ev.get("interval")
    interval = "—"
    if iv and iv.get("n"):
      where = "calibration split" if iv.get("in_sample") else f"calibrated on {iv.get('calibrated_on')}"
      interval = f"{100 * iv['coverage']:.1f}% in {iv['mean_width']:.1f} y ({where})"
    out.append(
      f"| {d.parent.name} | {model}{tta} | {'as released' if released else age_head_label(cfg)} |"
      f" {cfg['preset']}, {cfg['image_size']} px, {0 if released else run.get('epochs_done', '?')} ep | {data} | {ev['age_mae']:.2f} | {ev['cs5']:.3f} | {100 * ev['gender_acc']:.1f}%"
      f" | {interval} | {device}"
      f" | {wall} | `{short_commit((ev if released else run)['git_commit'])}` | `{d.relative_to(ROOT)}` |"
    )
    key = (model + tta, data)
    if key not in short or ev["age_mae"] < short[key][0]:
      short[key] = (
        ev["age_mae"],
        f"| {model}{tta} | {data} | {ev['age_mae']:.2f} | {100 * ev['gender_acc']:.1f}% | {interval} |"
        f" {cfg['preset']}, {cfg['image_size']} px | [{d.parent.name}]({d.relative_to(ROOT)}) |",
      )
  return [line for _, line in sorted(short.values(), key=lambda v: v[1])] if best else out


def short_table() -> str:
  peers = [
    f"| {PEER_NAMES.get(r['peer'], r['peer'])} (peer) | {r['dataset']} / {r['split']} (n={r['n']}) |"
    f" {r['age_mae']:.2f} | {100 * r['gender_acc']:.1f}% | — | as released | [{p.relative_to(ROOT)}]({p.relative_to(ROOT)}) |"
    for p in sorted(PEERS.glob("*.json"))
    for r in [json.loads(p.read_text())]
  ]
  return SHORT_HEAD + "\n" + "\n".join(rows(best=True) + peers)


def table() -> str:
  head = (
    "| experiment | model | age head | preset | data / split | age MAE (years) | CS(5) | gender acc. "
    "| 90 % age interval: coverage, mean width | device | train wall time | commit | files |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  )
  body = rows() + peer_rows()
  return head + "\n" + ("\n".join(body) if body else "| (no results yet) |" + " |" * 12)


def render(text: str, body: str, name: str) -> str:
  if BEGIN not in text or END not in text:
    raise SystemExit(f"{name} lacks the {BEGIN} ... {END} markers")
  pre, rest = text.split(BEGIN, 1)
  _, post = rest.split(END, 1)
  return f"{pre}{BEGIN}\n{body}\n{END}{post}"


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  g = p.add_mutually_exclusive_group()
  g.add_argument("--write", action="store_true")
  g.add_argument("--check", action="store_true")
  a = p.parse_args()
  stale = []
  for path, body in ((README, short_table()), (FULL, table())):
    text = path.read_text()
    new = render(text, body, path.name)
    if a.write:
      path.write_text(new)
    elif new != text:
      stale.append(path.relative_to(ROOT))
  if a.check and stale:
    print(f"stale results tables in {stale}: run python experiments/results_table.py --write", file=sys.stderr)
    return 1
  if not (a.write or a.check):
    print(table())
  return 0


if __name__ == "__main__":
  sys.exit(main())
