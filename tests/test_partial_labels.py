"""Labels that are missing or partial: masked genders and ages, age ranges and spreads, in the loss, the metrics and a
training run; and a manifest of UTKFace training to the same numbers as the utk_face builder."""

import json

import fake_utkface
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import restored_params, tiny_cfg

from jaxface import metrics
from jaxface.data import layouts, manifest, prepare
from jaxface.models import heads
from jaxface.training import losses, trainer

C = heads.AGES


def _batch(age, gender, lo=None, hi=None, std=None):
  age = jnp.asarray(age, jnp.float32)
  b = {"age": age, "gender": jnp.asarray(gender, jnp.int32)}
  b["age_min"] = jnp.asarray(lo if lo is not None else age, jnp.float32)
  b["age_max"] = jnp.asarray(hi if hi is not None else age, jnp.float32)
  b["age_std"] = jnp.asarray(std if std is not None else np.zeros(len(age)), jnp.float32)
  return b


def _out(logits, gender_logit):
  logits = jnp.asarray(logits, jnp.float32)
  q = jax.nn.softmax(logits, -1)
  return {"age_logits": logits, "age": (q * jnp.arange(C)).sum(-1), "gender_logit": jnp.asarray(gender_logit)}


def test_an_unknown_gender_or_age_gets_no_gradient_from_its_term():
  rng = np.random.default_rng(0)
  logits, g = rng.normal(size=(4, C)), rng.normal(size=4)
  batch = _batch([30, -1, 50, 20], [1, 0, -1, -1])
  obj = losses.Objective(1.0, 1.0)

  def loss(logits, g):
    return losses.joint(_out(logits, g), batch, obj)[0]

  d_logits, d_g = jax.grad(loss, argnums=(0, 1))(jnp.asarray(logits, jnp.float32), jnp.asarray(g, jnp.float32))
  assert np.all(np.asarray(d_g)[2:] == 0) and np.all(np.asarray(d_g)[:2] != 0)
  assert np.all(np.asarray(d_logits)[1] == 0) and np.all(np.abs(np.asarray(d_logits)[[0, 2, 3]]).sum(-1) > 0)
  _, sums = losses.joint(_out(logits, g), batch, obj)
  m = metrics.from_sums(jax.device_get(sums))
  assert m["n"] == 4 and float(sums["n_age"]) == 3 and float(sums["n_gender"]) == 2
  ages = np.asarray(_out(logits, g)["age"])
  assert m["age_mae"] == pytest.approx(np.mean(np.abs(ages[[0, 2, 3]] - [30, 50, 20])), rel=1e-5)


def test_an_age_range_gives_the_loss_computed_by_hand():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, C))
  batch = _batch([26, 40], [0, 1], lo=[25, 40], hi=[27, 40])
  out = _out(logits, np.zeros(2))
  log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  e = np.asarray(out["age"], np.float64)
  # dldl: uniform over 25, 26, 27; the absolute term is the distance to [25, 27]
  t = np.zeros(C)
  t[25:28] = 1 / 3
  want0 = (t[25:28] * (np.log(t[25:28]) - log_q[0, 25:28])).sum() + max(25 - e[0], e[0] - 27, 0)
  g = np.exp(-0.5 * ((np.arange(C) - 40) / 2.0) ** 2)
  g /= g.sum()
  want1 = (g * (np.log(np.maximum(g, 1e-300)) - log_q[1])).sum() + abs(e[1] - 40)
  got = losses.age_term(out, batch["age"], 2.0, "dldl", batch)
  np.testing.assert_allclose(np.asarray(got), [want0, want1], rtol=2e-5)
  # mean-variance: the probability of the range, the mean term to its midpoint
  q = np.exp(log_q)
  var = (q * (np.arange(C) - e[:, None]) ** 2).sum(-1)
  mv = [
    -np.log(q[0, 25:28].sum()) + 0.2 * 0.5 * (e[0] - 26) ** 2 + 0.05 * var[0],
    -log_q[1, 40] + 0.2 * 0.5 * (e[1] - 40) ** 2 + 0.05 * var[1],
  ]
  np.testing.assert_allclose(np.asarray(losses.age_term(out, batch["age"], 2.0, "mean_variance", batch)), mv, rtol=2e-5)
  # regression: the midpoint
  reg = {"age": jnp.asarray([20.0, 41.0]), "gender_logit": jnp.zeros(2)}
  np.testing.assert_allclose(np.asarray(losses.age_term(reg, batch["age"], 2.0, "dldl", batch)), [36.0, 1.0])


def test_an_exact_age_in_the_partial_path_is_the_classic_loss():
  rng = np.random.default_rng(2)
  out = _out(rng.normal(size=(3, C)), np.zeros(3))
  batch = _batch([3, 30, 90], [0, 1, 0])
  for loss in ("dldl", "mean_variance"):
    np.testing.assert_allclose(
      np.asarray(losses.age_term(out, batch["age"], 2.0, loss, batch)),
      np.asarray(losses.age_term(out, batch["age"], 2.0, loss)),
      rtol=1e-5,
    )


def test_an_apparent_age_std_is_the_label_std():
  out = _out(np.zeros((1, C)), np.zeros(1))
  wide = losses.age_term(out, jnp.asarray([30.0]), 2.0, "dldl", _batch([30], [0], std=[6.0]))
  narrow = losses.age_term(out, jnp.asarray([30.0]), 2.0, "dldl", _batch([30], [0], std=[0.0]))
  assert float(wide[0]) < float(narrow[0])  # a flat prediction is closer to the wider label


def test_evaluation_metrics_leave_unknowns_out_and_report_ranges():
  age = np.array([30, -1, 28.5, 50])
  s = metrics.summary(age, [32, 10, 30, 50], [1, -1, 0, 1], [0.9, 0.9, 0.9, 0.2], [25, -1, 25, 50], [35, -1, 32, 50])
  assert s["n"] == 4 and s["n_age"] == 3 and s["n_gender"] == 3
  assert s["age_mae"] == pytest.approx((2 + 1.5 + 0) / 3) and s["gender_acc"] == pytest.approx(1 / 3)
  assert s["age_in_range"] == pytest.approx(1.0)
  r = metrics.report(age, [32, 10, 30, 50], [1, -1, 0, 1], [0.9] * 4, [-1] * 4, by={"source": ["a", "b", "a", "b"]})
  assert r["per_source"]["a"]["n"] == 2 and r["per_source"]["b"]["n_age"] == 1


def test_utkface_as_a_manifest_trains_to_the_same_numbers(tmp_path, fake_archive):
  """Same seed, same splits, same order: the manifest path's run equals the utk_face builder's."""
  folder = fake_utkface.extract_flat(fake_archive[0], tmp_path / "faces")
  layouts.import_layout("utkface", folder, folder / "manifest.csv")
  runs = {}
  for name, data in (("utk", str(fake_archive[0])), ("manifest", str(folder / "manifest.csv"))):
    cfg = tiny_cfg(data, tmp_path / "tfds", crop="as-is", epochs=1)
    trainer.train(cfg, tmp_path / name)
    runs[name] = json.loads((tmp_path / name / "history.json").read_text())
  for key in ("train_loss", "val_loss", "val_age_mae", "val_gender_acc"):
    assert [h[key] for h in runs["utk"]] == pytest.approx([h[key] for h in runs["manifest"]], rel=1e-6), key
  a, b = restored_params(tmp_path / "utk", 6), restored_params(tmp_path / "manifest", 6)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)


@pytest.mark.parametrize("mode", ["device", "stream"])
def test_training_on_partial_labels(tmp_path, fake_archive, mode):
  """A manifest with ranges, spreads and unknowns trains, in both input modes, to finite numbers; the age and gender
  metrics count only the faces that have them."""
  folder = fake_utkface.extract_flat(fake_archive[0], tmp_path / "faces")
  layouts.import_layout("utkface", folder, folder / "utk.csv")
  rows = []
  for i, r in enumerate(manifest.read(folder / "utk.csv")):
    row = {"path": r.path, "gender": r.gender}
    kind = i % 4
    if kind == 0:
      row |= {"age_min": max(r.age - 3, 0), "age_max": r.age + 3}
    elif kind == 1:
      row |= {"age_mean": r.age, "age_std": 3.0}
    elif kind == 2:
      row |= {"age": r.age, "gender": ""}
    rows.append(row)  # kind 3: no age at all
  manifest.write(folder / "partial.csv", rows)
  cfg = tiny_cfg(
    str(folder / "partial.csv"), tmp_path / "tfds", crop="as-is", input=mode, age_head="distribution", epochs=1
  )
  trainer.train(cfg, tmp_path / "run")
  h = json.loads((tmp_path / "run" / "history.json").read_text())
  assert all(np.isfinite(e[k]) for e in h for k in ("train_loss", "val_loss", "val_age_mae", "val_gender_acc"))
  b = prepare.prepare(str(folder / "partial.csv"), "full", 32, tmp_path / "tfds", crop="as-is")
  assert b.info.metadata["partial_labels"] is True
  assert b.info.metadata["splits"]["train"]["gender"]["unknown"] > 0
  assert b.info.metadata["splits"]["train"]["age_band"]["unknown"] > 0


def test_evaluate_any_model_on_any_labelled_collection(tmp_path, fake_archive, trained, capsys):
  """``evaluate --data MANIFEST --split all``: unknowns left out, ranges reported, per source, predictions written."""
  from jaxface import evaluate as evaluate_cli
  from jaxface.inference import predictions

  folder = fake_utkface.extract_flat(fake_archive[0], tmp_path / "faces")
  layouts.import_layout("utkface", folder, folder / "utk.csv")
  rows = [
    {"path": r.path, "gender": "" if i % 3 == 0 else r.gender, "source": "a" if i % 2 else "b"}
    | ({"age_min": r.age, "age_max": r.age + 4} if i % 5 else {})
    for i, r in enumerate(manifest.read(folder / "utk.csv"))
  ]
  manifest.write(tmp_path / "other.csv", [dict(r, path=f"faces/{r['path']}") for r in rows])
  rc = evaluate_cli.main(
    ["--workdir", str(trained), "--data", str(tmp_path / "other.csv"), "--split", "all", "--crop", "as-is"]
  )
  out = json.loads(capsys.readouterr().out)
  skipped = {s["file_name"] for s in out["skipped"]}
  assert {s["reason"].split(" (")[0] for s in out["skipped"]} == {"empty file", "does not decode as an image"}
  used = [r for r in rows if f"faces/{r['path']}" not in skipped]
  assert rc == 0 and out["n"] == len(used) == len(rows) - len(skipped)
  assert out["n_gender"] == sum(1 for r in used if r["gender"] != "") < len(used)
  assert out["n_age"] == sum(1 for r in used if "age_min" in r) < len(used) and 0 <= out["age_in_range"] <= 1
  assert set(out["per_source"]) == {"a", "b"} and sum(v["n"] for v in out["per_source"].values()) == len(used)
  cols = predictions.read(trained / "predictions_all.csv")
  assert set(cols["source"]) == {"a", "b"} and (cols["gender"] == -1).sum() == len(used) - out["n_gender"]
  assert (cols["age"] == -1).sum() == len(used) - out["n_age"]


def test_source_weights_change_what_an_epoch_holds(tmp_path, fake_archive):
  """Training on a mixed manifest with --source-weights: an epoch holds each source as often as its weight says."""
  folder = fake_utkface.extract_flat(fake_archive[0], tmp_path / "faces")
  layouts.import_layout("utkface", folder, folder / "utk.csv")
  rows = [
    manifest.as_dict(r) | {"source": "x" if i % 2 else "y"} for i, r in enumerate(manifest.read(folder / "utk.csv"))
  ]
  manifest.write(folder / "mixed.csv", rows)
  for mode in ("device", "stream"):
    cfg = tiny_cfg(
      str(folder / "mixed.csv"), tmp_path / "tfds", crop="as-is", input=mode, source_weights={"y": 0}, epochs=1
    )
    trainer.train(cfg, tmp_path / mode)
    h = json.loads((tmp_path / mode / "history.json").read_text())
    b = prepare.prepare(str(folder / "mixed.csv"), "full", 32, tmp_path / "tfds", crop="as-is")
    xs = sum(1 for ex in b.as_data_source("train") if ex["source"] == b"x")
    assert h[0]["step"] == xs // 8, "an epoch should hold only source x's faces"
