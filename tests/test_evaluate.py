"""Metrics on hand-made predictions, and evaluate/plot on a tiny trained workdir."""

import csv
import json

import numpy as np
import pytest

from jaxface import evaluate as evaluate_cli
from jaxface import figures, metrics
from jaxface.data import pipeline
from jaxface.inference import evaluation, restore
from jaxface.inference.model import InferenceModel
from jaxface.training import losses


def test_summary_by_hand():
  age = np.array([10, 20, 30, 40])
  pred = np.array([12.0, 20.0, 36.0, 40.0])  # errors 2, 0, 6, 0
  gender = np.array([0, 1, 1, 0])
  p = np.array([0.2, 0.9, 0.4, 0.6])  # right, right, wrong, wrong
  s = metrics.summary(age, pred, gender, p)
  assert s == {"n": 4, "age_mae": 2.0, "age_rmse": pytest.approx(np.sqrt(10.0)), "cs5": 0.75, "gender_acc": 0.5}
  np.testing.assert_array_equal(metrics.confusion(gender, p), [[1, 1], [1, 1]])


def test_report_groups():
  age = np.array([5, 15, 25, 85, 85])
  pred = np.array([6.0, 15.0, 20.0, 80.0, 95.0])
  gender = np.array([0, 1, 0, 1, 1])
  p = np.array([0.1, 0.8, 0.3, 0.7, 0.2])
  race = np.array([0, 1, -1, 2, 2])
  r = metrics.report(age, pred, gender, p, race)
  assert r["per_age_band"]["0-12"] == {"n": 1, "age_mae": 1.0, "age_rmse": 1.0, "cs5": 1.0, "gender_acc": 1.0}
  assert r["per_age_band"]["80+"]["n"] == 2 and r["per_age_band"]["80+"]["age_mae"] == 7.5
  assert r["per_age_band"]["40-59"]["n"] == 0 and r["per_age_band"]["40-59"]["age_mae"] is None
  assert r["per_race"]["unknown"]["n"] == 1 and r["per_race"]["asian"]["gender_acc"] == 0.5
  assert r["per_gender"]["female"]["n"] == 3


def test_padded_final_batch_counts_each_example_once():
  """Masked sums over a padded batch equal the metrics of the real examples alone."""
  rng = np.random.default_rng(0)
  src = [
    {"image": np.zeros((2, 2, 3), np.uint8), "age": int(a), "gender": int(g), "race": 0, "file_name": f"{i}"}
    for i, (a, g) in enumerate(zip(rng.integers(1, 90, 7), rng.integers(0, 2, 7), strict=True))
  ]
  pred_age = {s["file_name"]: float(s["age"]) + (3.0 if i % 2 else -1.0) for i, s in enumerate(src)}
  total = None
  for batch in pipeline.eval_dataset(src, batch_size=3):  # 3 + 3 + 1 (padded with 2 copies)
    out = {"age": np.array([pred_age[f] for f in batch["file_name"]]), "gender_logit": np.full(3, 1.0)}
    _, sums = losses.joint(out, batch, losses.Objective(0.1, 1.0), mask=batch["mask"])
    total = sums if total is None else {k: total[k] + sums[k] for k in sums}
  got = metrics.from_sums(total)
  want = metrics.summary(
    np.array([s["age"] for s in src]),
    np.array(list(pred_age.values())),
    np.array([s["gender"] for s in src]),
    np.full(7, 0.73),
  )
  assert got["n"] == 7
  assert got["age_mae"] == pytest.approx(want["age_mae"]) and got["gender_acc"] == pytest.approx(want["gender_acc"])


def test_evaluate_matches_training_validation(trained):
  r = evaluation.evaluate(trained, "validation", checkpoint="last")
  last = json.loads((trained / "history.json").read_text())[-1]
  assert r["n"] == 7 and r["step"] == last["step"]
  assert r["age_mae"] == pytest.approx(last["val_age_mae"], rel=1e-4)
  assert r["gender_acc"] == pytest.approx(last["val_gender_acc"])
  assert json.loads((trained / "eval_validation.json").read_text())["age_mae"] == r["age_mae"]
  with open(trained / "predictions_validation.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 7 and set(rows[0]) >= {"file_name", "age", "pred_age", "gender", "p_female"}
  assert sum(r_["age_mae"] is not None for r_ in r["per_age_band"].values()) >= 1


def test_evaluate_split_all_and_tta(trained, fake_archive):
  _, expect = fake_archive
  r = evaluation.evaluate(trained, "all", tta="flip", data=str(fake_archive[0]))
  # every usable file: duplicates included, skipped files reported
  assert r["n"] == expect["usable"] + 3 and r["tta"] == "flip"
  # each prediction is the mean of the face's and its mirror's, as predicted without TTA
  restored = restore.load(trained)
  source, _ = evaluation.load_split(restored, "all", str(fake_archive[0]))
  mirrored = [{**ex, "image": np.asarray(ex["image"])[:, ::-1]} for ex in source]
  plain = evaluation.predict_source(InferenceModel(restored), source, 4)
  mirror = evaluation.predict_source(InferenceModel(restored), mirrored, 4)
  with open(trained / "predictions_all.csv") as f:
    got = {row["file_name"]: float(row["pred_age"]) for row in csv.DictReader(f)}
  want = (plain["pred_age"] + mirror["pred_age"]) / 2
  assert np.abs(plain["pred_age"] - mirror["pred_age"]).max() > 1e-3
  np.testing.assert_allclose([got[n] for n in plain["file_name"]], want, rtol=1e-4, atol=1e-3)
  assert {s["file_name"] for s in r["skipped"]} == expect["skipped"]
  with pytest.raises(ValueError, match="has no 'nope' split"):
    evaluation.load_split(restore.load(trained), "nope", None)


def test_evaluate_cli_errors(tmp_path, capsys):
  assert evaluate_cli.main(["--workdir", str(tmp_path)]) == 2
  assert "config.json" in capsys.readouterr().err


def test_plot_draws_what_the_files_hold(trained, tmp_path, monkeypatch):
  """Each figure shows the numbers of history.json, eval_<split>.json and predictions_<split>.csv."""
  ev = evaluation.evaluate(trained, "validation")
  history = json.loads((trained / "history.json").read_text())
  drawn = {}
  real_save = figures._save
  monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault(path.name, fig) and real_save(fig, path))
  made = figures.plot([trained], tmp_path)
  assert (
    sorted(p.name for p in made)
    == sorted(drawn)
    == sorted(
      ["training_curves.png", "final_metrics.png", "age_scatter.png", "mae_per_age_band.png", "gender_confusion.png"]
    )
  )
  assert all(p.stat().st_size > 10_000 for p in made)
  curves = drawn["training_curves.png"].axes
  for ax, key in zip(curves, ("loss", "age_mae", "gender_acc"), strict=True):
    train_line, val_line = ax.lines[:2]  # the first run's train and validation curves
    np.testing.assert_allclose(train_line.get_ydata(), [h[f"train_{key}"] for h in history])
    np.testing.assert_allclose(val_line.get_ydata(), [h[f"val_{key}"] for h in history])
  bars = drawn["final_metrics.png"].axes
  for ax, key in zip(bars, ("age_mae", "cs5", "gender_acc"), strict=True):
    assert [p.get_height() for p in ax.patches] == pytest.approx([ev[key]])
  scatter = drawn["age_scatter.png"].axes[0].collections[0].get_offsets()
  with open(trained / "predictions_validation.csv") as f:
    rows = list(csv.DictReader(f))
  np.testing.assert_allclose(np.asarray(scatter), [[float(r["age"]), float(r["pred_age"])] for r in rows], rtol=1e-6)
  texts = [t.get_text() for t in drawn["gender_confusion.png"].axes[0].texts]
  assert [int(t.split()[0]) for t in texts] == [v for row in ev["gender_confusion"] for v in row]
