"""PNG figures comparing trained models: training curves, final metrics side by
side, predicted vs true age, age MAE per age band, gender confusion matrices,
and the calibrated age interval's coverage, width and reliability.
Curves come from each workdir's history.json; the rest from its
eval_<split>.json and predictions_<split>.csv (run ``jaxface.evaluate`` first;
a workdir without them is left out of those figures, and said so).
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxface import files, metrics  # noqa: E402
from jaxface.data import labels as labels_lib  # noqa: E402
from jaxface.inference import predictions  # noqa: E402
from jaxface.training.losses import DISTRIBUTION_LOSSES  # noqa: E402


def age_head_label(cfg: dict) -> str:
  """A run's age head as written in plots and the README's table: its loss and linear heads too, where not default."""
  head = cfg.get("age_head", "regression")  # configs before the distribution head: regression
  loss = cfg.get("age_loss", DISTRIBUTION_LOSSES[0])  # configs before --age-loss: the default
  notes = [loss.replace("_", "-")] if loss != DISTRIBUTION_LOSSES[0] else []
  notes += ["linear"] if cfg.get("hidden") == [] else []  # `--hidden` alone: no hidden layer
  return f"{head} ({', '.join(notes)})" if notes else head


def _label(workdir: Path) -> str:
  cfg = files.read_json(workdir / "config.json", "the run's config")
  pre = " (pretrained)" if cfg.get("pretrained") else ""
  return f"{cfg['arch']}{pre}, {age_head_label(cfg)} head, {cfg['preset']} preset, {cfg['image_size']}px"


def training_curves(runs: dict[str, list[dict]], out: Path) -> Path:
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
  panels = (
    (metrics.LOSS, "joint loss (age term + BCE)"),
    (metrics.AGE_MAE, "age MAE (years)"),
    (metrics.GENDER_ACC, "gender accuracy"),
  )
  for ax, (key, title) in zip(axes, panels, strict=True):
    for i, (name, h) in enumerate(runs.items()):
      ep = [e["epoch"] for e in h]
      color = f"C{i}"
      ax.plot(ep, [e[f"{metrics.TRAIN}_{key}"] for e in h], color=color, ls="--", alpha=0.8, label=f"{name} — train")
      ax.plot(ep, [e[f"{metrics.VAL}_{key}"] for e in h], color=color, ls="-", lw=2, label=f"{name} — validation")
    ax.set(title=title, xlabel="epoch", ylabel=title)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
  axes[0].set_yscale("log")
  handles, labels = axes[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False)
  fig.suptitle("Training curves (dashed: train, solid: validation)")
  fig.tight_layout(rect=(0, 0.06 + 0.03 * len(runs), 1, 1))
  return _save(fig, out / "training_curves.png")


def final_metrics(evals: dict[str, dict], out: Path, split: str) -> Path:
  keys = (
    (metrics.AGE_MAE, "age MAE (years, lower is better)"),
    (metrics.CS5, "CS(5): share within 5 years"),
    (metrics.GENDER_ACC, "gender accuracy"),
  )
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
  names = list(evals)
  for ax, (key, title) in zip(axes, keys, strict=True):
    vals = [evals[n][key] for n in names]
    bars = ax.bar(range(len(names)), vals, color=[f"C{i}" for i in range(len(names))])
    ax.bar_label(bars, fmt="%.3f" if key != metrics.AGE_MAE else "%.2f")
    ax.set_xticks(range(len(names)), [n.replace(", ", "\n", 1) for n in names], fontsize=8)
    ax.set(title=title)
    ax.set_ylim(0, 1.0 if key != metrics.AGE_MAE else 1.15 * max(vals))  # room for the bar labels
    ax.grid(axis="y", alpha=0.3)
  fig.suptitle(f"Final metrics on the {split} split (n = {', '.join(str(evals[n]['n']) for n in names)})")
  fig.tight_layout()
  return _save(fig, out / "final_metrics.png")


def age_scatter(preds: dict[str, dict], out: Path, split: str) -> Path:
  fig, axes = plt.subplots(1, len(preds), figsize=(5.2 * len(preds), 5), squeeze=False)
  for ax, (name, p) in zip(axes[0], preds.items(), strict=True):
    mae = float(np.mean(np.abs(p["pred_age"] - p["age"])))
    ax.scatter(p["age"], p["pred_age"], s=6, alpha=0.4)
    lim = (0, max(p["age"].max(), p["pred_age"].max()) + 5)
    ax.plot(lim, lim, "k--", lw=1, label="prediction = truth")
    ax.set(
      xlim=lim,
      ylim=lim,
      xlabel="true age (years)",
      ylabel="predicted age (years)",
      title=f"{name}\nMAE {mae:.2f} years",
    )
    ax.set_aspect("equal")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
  fig.suptitle(f"Predicted vs true age ({split} split)")
  fig.tight_layout()
  return _save(fig, out / "age_scatter.png")


def mae_per_band(evals: dict[str, dict], out: Path, split: str) -> Path:
  bands = labels_lib.AGE_BAND_NAMES
  width = 0.8 / len(evals)
  fig, ax = plt.subplots(figsize=(10, 4.5))
  for i, (name, ev) in enumerate(evals.items()):
    vals = [ev["per_age_band"][b][metrics.AGE_MAE] or 0.0 for b in bands]
    ax.bar(np.arange(len(bands)) + i * width - 0.4 + width / 2, vals, width, label=name, color=f"C{i}")
  first = next(iter(evals.values()))
  ax.set_xticks(range(len(bands)), [f"{b}\n(n={first['per_age_band'][b]['n']})" for b in bands])
  ax.set(xlabel="true age band (years)", ylabel="age MAE (years)", title=f"Age MAE per age band ({split} split)")
  ax.legend(fontsize=9)
  ax.grid(axis="y", alpha=0.3)
  fig.tight_layout()
  return _save(fig, out / "mae_per_age_band.png")


def confusion_matrices(evals: dict[str, dict], out: Path, split: str) -> Path:
  fig, axes = plt.subplots(1, len(evals), figsize=(4.6 * len(evals), 4.2), squeeze=False)
  for ax, (name, ev) in zip(axes[0], evals.items(), strict=True):
    m = np.asarray(ev["gender_confusion"])
    ax.imshow(m / m.sum(axis=1, keepdims=True), cmap="Blues", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(m):
      share = v / max(m[r].sum(), 1)
      ax.text(c, r, f"{v}\n{share:.1%}", ha="center", va="center", color="white" if share > 0.5 else "black")
    ax.set_xticks([0, 1], ["male", "female"])
    ax.set_yticks([0, 1], ["male", "female"])
    ax.set(xlabel="predicted", ylabel="true", title=f"{name}\naccuracy {ev['gender_acc']:.1%}")
  fig.suptitle(f"Gender confusion matrices ({split} split; share of each true class)")
  fig.tight_layout()
  return _save(fig, out / "gender_confusion.png")


def age_intervals(evals: dict[str, dict], out: Path, split: str) -> Path:
  """Coverage and mean width of the calibrated interval per age band, and its reliability curve."""
  bands = labels_lib.AGE_BAND_NAMES
  width = 0.8 / len(evals)
  fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
  nominal = next(iter(evals.values()))["interval"]["nominal_coverage"]
  for i, (name, ev) in enumerate(evals.items()):
    iv = ev["interval"]
    x = np.arange(len(bands)) + i * width - 0.4 + width / 2
    label = f"{name}: {iv['coverage']:.1%}, mean width {iv['mean_width']:.1f} y"
    axes[0].bar(x, [iv["per_age_band"][b].get("coverage", 0.0) for b in bands], width, color=f"C{i}", label=label)
    axes[1].bar(x, [iv["per_age_band"][b].get("mean_width", 0.0) for b in bands], width, color=f"C{i}")
    levels = sorted(iv.get("reliability", {}).items(), key=lambda kv: float(kv[0]))
    axes[2].plot([float(k) for k, _ in levels], [v for _, v in levels], "o-", color=f"C{i}")
  axes[0].axhline(nominal, color="k", ls="--", lw=1)
  first = next(iter(evals.values()))["interval"]
  ticks = [f"{b}\n(n={first['per_age_band'][b]['n']})" for b in bands]
  axes[0].set(title=f"coverage per age band (dashed: nominal {nominal:.0%})", ylabel="share of true ages inside")
  axes[0].set_ylim(0, 1.05)
  axes[1].set(title="mean interval width per age band", ylabel="years")
  for ax in axes[:2]:
    ax.set_xticks(range(len(bands)), ticks, fontsize=8)
    ax.set_xlabel("true age band (years)")
  axes[2].plot([0.5, 1], [0.5, 1], "k--", lw=1)
  axes[2].set(
    title="reliability: the interval at each level", xlabel="nominal coverage (calibrated on validation)",
    ylabel=f"coverage on {split}", xlim=(0.45, 1), ylim=(0.45, 1),
  )  # fmt: skip
  for ax in axes:
    ax.grid(alpha=0.3)
  handles, labels = axes[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", ncol=1, fontsize=9, frameon=False)
  fig.suptitle(f"Calibrated age interval ({split} split)")
  fig.tight_layout(rect=(0, 0.04 + 0.04 * len(evals), 1, 1))
  return _save(fig, out / "age_intervals.png")


def _save(fig, path: Path) -> Path:
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot(workdirs: list[str | Path], out: str | Path, split: str = "validation") -> list[Path]:
  out = Path(out)
  out.mkdir(parents=True, exist_ok=True)
  workdirs = [Path(w) for w in workdirs]
  names = {}
  for w in workdirs:
    name = _label(w)
    names[w] = name if name not in names.values() else f"{name} [{w.name}]"
  runs = {names[w]: files.read_json(w / "history.json", "the run's history, one entry per epoch") for w in workdirs}
  made = [training_curves(runs, out)]
  evals, preds = {}, {}
  for w in workdirs:
    if (w / f"eval_{split}.json").exists() and (w / f"predictions_{split}.csv").exists():
      evals[names[w]] = files.read_json(w / f"eval_{split}.json", "evaluate's metrics")
      preds[names[w]] = predictions.read(w / f"predictions_{split}.csv")
    else:
      logging.warning(
        "%s: no eval_%s.json / predictions_%s.csv (run jaxface.evaluate); left out of the metric figures",
        w,
        split,
        split,
      )
  if evals:
    made += [
      final_metrics(evals, out, split),
      age_scatter(preds, out, split),
      mae_per_band(evals, out, split),
      confusion_matrices(evals, out, split),
    ]
  calibrated = {name: ev for name, ev in evals.items() if ev.get("interval")}
  if calibrated:
    made.append(age_intervals(calibrated, out, split))
  return made
