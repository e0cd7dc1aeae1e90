"""The per-face predictions file, DIR/predictions_<split>.csv: written by ``evaluate``, read by plots and experiments.

No JAX here: ``jaxface.plot`` and the experiment scripts read it without the model stack.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from jaxface import files

REQUIRED = ("file_name", "age", "pred_age", "gender", "p_female", "race")
TEXT = ("file_name", "source", "group")  # read as text; every other column as numbers


def write(path: Path, cols: dict) -> None:
  """One row per face; age_spread (distribution head) and age_low/age_high (calibrated) where there are; a
  manifest's age range, source and group where it has them. An unknown age or gender is -1."""
  extra = [k for k in ("age_spread", "age_low", "age_high") if k in cols]
  labels = [k for k in ("age_min", "age_max", "source", "group") if k in cols]
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow([*REQUIRED, *extra, *labels])
  for i in range(len(cols["age"])):
    w.writerow(
      [
        cols["file_name"][i],
        f"{float(cols['age'][i]):g}",
        f"{cols['pred_age'][i]:.3f}",
        int(cols["gender"][i]),
        f"{cols['p_female'][i]:.5f}",
        int(cols["race"][i]),
        *(f"{cols[k][i]:.3f}" for k in extra),
        *(cols[k][i] if k in TEXT else f"{float(cols[k][i]):g}" for k in labels),
      ]
    )
  files.write_text(path, buf.getvalue())


def read(path: Path) -> dict[str, np.ndarray]:
  """Column -> array (file_name as str, the rest as float) of a predictions file; a clear error naming a bad one."""
  path = Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such predictions file (run jaxface.evaluate on that workdir)")
  with path.open(newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows or not set(REQUIRED) <= set(rows[0]):
    raise ValueError(f"{path}: not a jaxface predictions file (needs the columns {list(REQUIRED)})")
  return {k: np.array([r[k] for r in rows]) if k in TEXT else np.array([float(r[k]) for r in rows]) for k in rows[0]}
