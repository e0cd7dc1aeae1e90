import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_tables_are_generated_from_the_results_files():
  out = subprocess.run(
    [sys.executable, str(ROOT / "benchmarks" / "make_table.py"), "--check"], capture_output=True, text=True
  )
  assert out.returncode == 0, out.stderr
