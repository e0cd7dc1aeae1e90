"""experiments/paired_gap.py: the paired gap between two runs' predictions, and its bootstrap interval."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from jaxface.inference import predictions

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("paired_gap", ROOT / "experiments" / "paired_gap.py")
paired_gap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired_gap)


def write(d: Path, ages, preds, genders, p_female) -> Path:
  d.mkdir()
  cols = {"age": ages, "pred_age": preds, "gender": genders, "p_female": p_female}
  cols = {k: np.asarray(v, np.float64) for k, v in cols.items()}
  n = len(cols["age"])
  predictions.write(
    d / "predictions_validation.csv", cols | {"file_name": [f"{i}.jpg" for i in range(n)], "race": np.zeros(n)}
  )
  return d


def test_gap_and_interval_on_known_errors(tmp_path):
  rng = np.random.default_rng(1)
  n = 4000
  ages = rng.integers(1, 90, n)
  err_a = rng.exponential(5.0, n)
  err_b = err_a + 0.3 + rng.normal(0, 2.0, n)  # 0.3 years worse on average, noisy per face
  gender = rng.integers(0, 2, n)
  a = write(tmp_path / "a", ages, ages + err_a, gender, gender * 0.9 + 0.05)  # every gender right
  b = write(
    tmp_path / "b", ages, ages - err_b, gender, np.where(np.arange(n) < n // 10, 1 - gender, gender) * 0.9 + 0.05
  )
  out = tmp_path / "new" / "gap.json"
  paired_gap.main(["--pair", str(a), str(b), "--out", str(out)])
  (g,) = json.loads(out.read_text())["pairs"]
  d = np.abs(err_b) - err_a
  assert g["n"] == n and g["mae_gap"] == pytest.approx(d.mean(), abs=2e-3)
  se = d.std() / np.sqrt(n)
  lo, hi = g["mae_gap_ci95"]
  assert lo < d.mean() < hi and hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)  # the normal approximation's width
  assert g["gender_acc_a"] == 1.0 and g["gender_acc_gap"] == pytest.approx(-0.1)


def test_runs_of_different_faces_are_refused(tmp_path):
  a = write(tmp_path / "a", [30, 40], [31, 41], [0, 1], [0.1, 0.9])
  b = write(tmp_path / "b", [30], [31], [0], [0.1])
  with pytest.raises(SystemExit, match="scored different faces"):
    paired_gap.main(["--pair", str(a), str(b), "--out", str(tmp_path / "gap.json")])
  with pytest.raises(FileNotFoundError, match="no such predictions file"):
    paired_gap.main(["--pair", str(a), str(tmp_path / "none"), "--out", str(tmp_path / "gap.json")])
