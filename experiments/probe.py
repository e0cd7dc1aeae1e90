"""Frozen-feature probe: which pretrained backbone carries the most age and gender, before any fine-tuning.

Each candidate's backbone (its pretrained weights, frozen) turns the subset5000 faces into pooled features at its cpu
preset's input size. Two heads are fitted on the 4,000 training faces and scored on the 1,000 validation faces:
- linear: ridge regression for age and logistic regression for gender (the ridge strength chosen on a fifth of the
  training faces held out, then refitted on all of them);
- mlp: one hidden layer of 256, trained full-batch with Adam on 0.1*MSE(age) + BCE(gender) (the classic loss).
Recognition features are built to ignore age, so a weak probe does not rule a backbone out; it ranks which two to
fine-tune first.

  python experiments/probe.py --data /path/to/UTKFace.tar.gz [--arch faceres ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxface import config as config_lib  # noqa: E402
from jaxface import files, models, provenance  # noqa: E402
from jaxface.data import augment, pipeline, prepare  # noqa: E402
from jaxface.ports import backbone, released  # noqa: E402

# arch -> where its pretrained backbone comes from (jaxface.convert's output, or 'released': fetched, digest-checked)
CANDIDATES = {
  "faceres": "runs/faceres_backbone",
  "faceres_deep": "runs/faceres_deep_backbone",
  "cydral": "released",
  "mobilenet_v2": str(ROOT.parent / "shared" / "weights" / "mobilenet_v2-b0353104.safetensors"),
  "mobilefacenet": "released",
}
RACES = ("White", "Black", "Asian", "Indian", "Others")  # UTKFace's race codes 0..4


def features(arch: str, pretrained: str, data: str) -> dict[str, dict[str, np.ndarray]]:
  """{split: {'x': pooled features, 'age', 'gender', 'race'}} over subset5000's train and validation faces."""
  cfg = config_lib.make(arch, "cpu")
  model = models.from_config(cfg)
  source = released.weights(arch) if pretrained == released.RELEASED_WEIGHTS else pretrained
  backbone.load_backbone(model.backbone, backbone.read_pretrained(source), source=str(source))
  net = models.mode(model.backbone, train=False)
  norm = models.imagenet_normalised(arch)
  forward = nnx.jit(lambda m, x: m(augment.preprocess(x, imagenet_norm=norm)))
  builder = prepare.prepare(data, "subset5000", cfg.image_size)
  out = {}
  for split in ("train", "validation"):
    cols = {"x": [], "age": [], "gender": [], "race": []}
    for batch in pipeline.eval_dataset(builder.as_data_source(split), batch_size=64):
      m = batch["mask"]
      cols["x"].append(np.asarray(forward(net, jnp.asarray(batch["image"])))[m])
      for k in ("age", "gender", "race"):
        cols[k].append(np.asarray(batch[k])[m])
    out[split] = {k: np.concatenate(v) for k, v in cols.items()}
  return out


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
  mu, sd = train.mean(0), train.std(0)
  sd = np.where(sd < 1e-3, 1.0, sd)  # a feature (nearly) constant on the training faces stays unscaled
  return [(a - mu) / sd for a in (train, *others)]


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
  xb = np.hstack([x, np.ones((len(x), 1))])
  reg = lam * np.eye(xb.shape[1])
  reg[-1, -1] = 0.0
  return np.linalg.solve(xb.T @ xb + reg, xb.T @ y)


def _predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
  return np.hstack([x, np.ones((len(x), 1))]) @ w


def _logistic(x: np.ndarray, y: np.ndarray, lam: float, steps: int = 50) -> np.ndarray:
  """L2-regularised logistic regression by Newton's method (the bias unregularised)."""
  xb = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
  w = np.zeros(xb.shape[1])
  reg = lam * np.eye(xb.shape[1])
  reg[-1, -1] = 0.0
  for _ in range(steps):
    p = 1 / (1 + np.exp(-(xb @ w)))
    grad = xb.T @ (p - y) + reg @ w
    hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg
    w -= np.linalg.solve(hess, grad)
  return w


def linear_probe(tr: dict, va: dict) -> tuple[np.ndarray, np.ndarray, dict]:
  xtr, xva = _standardise(tr["x"], va["x"])
  n = len(xtr) * 4 // 5
  lams = (1.0, 10.0, 100.0, 1000.0, 10000.0)
  age_lam = min(
    lams, key=lambda lam: np.abs(_predict(_ridge(xtr[:n], tr["age"][:n], lam), xtr[n:]) - tr["age"][n:]).mean()
  )
  gen_lam = min(
    lams,
    key=lambda lam: -((_predict(_logistic(xtr[:n], tr["gender"][:n], lam), xtr[n:]) > 0) == tr["gender"][n:]).mean(),
  )
  age = _predict(_ridge(xtr, tr["age"], age_lam), xva)
  logit = _predict(_logistic(xtr, tr["gender"], gen_lam), xva)
  return age, logit, {"age_ridge": age_lam, "gender_l2": gen_lam}


def mlp_probe(tr: dict, va: dict, steps: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
  xtr, xva = (jnp.asarray(a, jnp.float32) for a in _standardise(tr["x"], va["x"]))
  age, gender = jnp.asarray(tr["age"], jnp.float32), jnp.asarray(tr["gender"], jnp.float32)
  k1, k2 = jax.random.split(jax.random.key(seed))
  d, h = xtr.shape[1], 256
  params = {
    "w1": jax.random.normal(k1, (d, h)) * jnp.sqrt(2.0 / d), "b1": jnp.zeros(h),
    "w2": jax.random.normal(k2, (h, 2)) * jnp.sqrt(1.0 / h), "b2": jnp.array([float(age.mean()), 0.0]),
  }  # fmt: skip

  def apply(p, x, key=None):
    hid = jax.nn.relu(x @ p["w1"] + p["b1"])
    if key is not None:  # dropout 0.3, as the heads have
      hid = hid * jax.random.bernoulli(key, 0.7, hid.shape) / 0.7
    out = hid @ p["w2"] + p["b2"]
    return out[:, 0], out[:, 1]

  def loss(p, key):
    a, g = apply(p, xtr, key)
    return 0.1 * jnp.mean((a - age) ** 2) + jnp.mean(optax.sigmoid_binary_cross_entropy(g, gender))

  opt = optax.adamw(1e-3, weight_decay=1e-2)
  state = opt.init(params)

  @jax.jit
  def step(p, s, key):
    g = jax.grad(loss)(p, key)
    u, s = opt.update(g, s, p)
    return optax.apply_updates(p, u), s

  key = jax.random.key(seed + 1)
  for i in range(steps):
    params, state = step(params, state, jax.random.fold_in(key, i))
  a, g = apply(params, xva)
  return np.asarray(a), np.asarray(g), {"hidden": h, "steps": steps, "optimizer": "adamw 1e-3, wd 1e-2"}


def score(va: dict, age: np.ndarray, logit: np.ndarray) -> dict:
  right = (logit > 0) == va["gender"].astype(bool)
  by_race = {
    RACES[r]: {"n": int((va["race"] == r).sum()), "gender_acc": round(float(right[va["race"] == r].mean()), 4)}
    for r in range(len(RACES)) if (va["race"] == r).any()
  }  # fmt: skip
  return {
    "age_mae": round(float(np.abs(age - va["age"]).mean()), 3),
    "gender_acc": round(float(right.mean()), 4),
    "by_race": by_race,
  }


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", required=True, help="the UTKFace archive")
  p.add_argument("--arch", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
  p.add_argument("--out", default=str(ROOT / "experiments" / "results" / "probe.json"))
  args = p.parse_args(argv)
  t0 = time.perf_counter()
  rows = {}
  for arch in args.arch:
    t = time.perf_counter()
    f = features(arch, CANDIDATES[arch], args.data)
    tr, va = f["train"], f["validation"]
    cfg = config_lib.make(arch, "cpu")
    rows[arch] = {
      "pretrained": CANDIDATES[arch], "image_size": cfg.image_size, "features": int(tr["x"].shape[1]),
      "n_train": len(tr["x"]), "n_validation": len(va["x"]),
    }  # fmt: skip
    for name, probe in (("linear", linear_probe), ("mlp", mlp_probe)):
      age, logit, how = probe(tr, va)
      rows[arch][name] = {**score(va, age, logit), "fit": how}
    rows[arch]["wall_s"] = round(time.perf_counter() - t, 1)
    print(arch, json.dumps({k: rows[arch][k] for k in ("linear", "mlp")}), flush=True)
  ranking = sorted(rows, key=lambda a: rows[a]["mlp"]["age_mae"] / 5 - rows[a]["mlp"]["gender_acc"])
  result = {
    "what": "frozen-feature probe on subset5000 (train 4000 / validation 1000): linear and one-hidden-layer heads "
    "on each backbone's pooled features, at its cpu preset's size",
    "rows": rows,
    "ranking": ranking,
    "ranking_rule": "mlp probe: age MAE / 5 - gender accuracy (lower is better)",
    **provenance.record(time.perf_counter() - t0),
  }
  files.write_json(args.out, result)
  print("ranking:", ranking)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
