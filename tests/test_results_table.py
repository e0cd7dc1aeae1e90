import subprocess
import sys
from pathlib import Path

from jaxface.figures import age_head_label

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_table_is_generated_from_the_results_files():
  out = subprocess.run(
    [sys.executable, str(ROOT / "experiments" / "results_table.py"), "--check"], capture_output=True, text=True
  )
  assert out.returncode == 0, out.stderr


def test_the_model_card_is_generated_from_the_results_files():
  out = subprocess.run(
    [sys.executable, str(ROOT / "experiments" / "model_card.py"), "--check"], capture_output=True, text=True
  )
  assert out.returncode == 0, out.stderr


def test_age_head_label_names_what_differs_from_the_defaults():
  assert age_head_label({}) == "regression"  # configs from before the distribution head
  assert age_head_label({"age_head": "distribution", "age_loss": "dldl", "hidden": [128]}) == "distribution"
  mv = {"age_head": "distribution", "age_loss": "mean_variance", "hidden": [128]}
  assert age_head_label(mv) == "distribution (mean-variance)"
  assert age_head_label(mv | {"hidden": []}) == "distribution (mean-variance, linear)"
  assert age_head_label({"age_head": "regression", "hidden": []}) == "regression (linear)"
