"""Age MAE and gender accuracy of trained workdirs on degraded copies of the subset5000 validation faces.

  python experiments/degraded_eval.py --workdirs A B [...] --out FILE [--data UTKFace.tar.gz]

Each validation face (the 200x200 original, read from the archive) is degraded
on the host as a user's photo might be, then sized for the model as the
dataset is (``faces.image.to_square``): clean; grayscale; blur (Gaussian, radius 2
px at 200 px); noise (Gaussian, std 12/255); JPEG at quality 20 (Pillow's
encoder, not the training's on-device approximation); a colour cast (R x1.2,
B x0.8); dark (brightness x0.5). One JSON file: per workdir and condition, n,
age MAE, gender accuracy; with the command, commit, host, date and wall time.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxface import files, metrics, provenance  # noqa: E402
from jaxface.data import source as source_lib  # noqa: E402
from jaxface.faces import image  # noqa: E402
from jaxface.inference import predictions  # noqa: E402


def _noise(img: Image.Image) -> Image.Image:
  a = np.asarray(img, np.float32) + np.random.default_rng(0).normal(0, 12, (img.height, img.width, 3))
  return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))


def _jpeg(img: Image.Image) -> Image.Image:
  buf = io.BytesIO()
  img.save(buf, format="JPEG", quality=20)
  return Image.open(buf).convert("RGB")


def _cast(img: Image.Image) -> Image.Image:
  a = np.asarray(img, np.float32) * np.array([1.2, 1.0, 0.8])
  return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))


CONDITIONS = {
  "clean": lambda img: img,
  "grayscale": lambda img: img.convert("L").convert("RGB"),
  "blur": lambda img: img.filter(ImageFilter.GaussianBlur(2)),
  "noise": _noise,
  "jpeg_q20": _jpeg,
  "colour_cast": _cast,
  "dark": lambda img: ImageEnhance.Brightness(img).enhance(0.5),
}


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdirs", nargs="+", required=True)
  p.add_argument("--out", required=True)
  p.add_argument("--data", default=None, help="UTKFace.tar.gz (default $JAXFACE_DATA)")
  a = p.parse_args()
  import os

  t0 = time.perf_counter()
  run = provenance.record()
  from jaxface.inference import model, restore

  data = a.data or os.environ.get("JAXFACE_DATA")
  if not data:
    p.error("give --data or set JAXFACE_DATA")
  rows = {}
  for wd in a.workdirs:
    r = restore.load(wd)
    faces = _read(data, set(predictions.read(Path(wd) / "predictions_validation.csv")["file_name"]))
    fn = model.InferenceModel(r)
    size = r.cfg.image_size
    out = {}
    for cond, degrade in CONDITIONS.items():
      images = np.stack([np.asarray(image.to_square(degrade(f["image"]), size)) for f in faces])
      preds = {"age": [], "p_female": []}
      for i in range(0, len(images), 100):
        got = fn(images[i : i + 100])
        for k in preds:
          preds[k].append(np.asarray(got[k]))
      s = metrics.summary(
        [f["age"] for f in faces], np.concatenate(preds["age"]), [f["gender"] for f in faces],
        np.concatenate(preds["p_female"]),
      )  # fmt: skip
      out[cond] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}
      print(wd, cond, out[cond], flush=True)
    rows[wd] = {"config": json.loads(r.cfg.to_json()), "step": r.step, "conditions": out}
  result = {
    **run, "data": data, "faces": "subset5000 validation",
    "results": rows, "wall_s": round(time.perf_counter() - t0, 1),
  }  # fmt: skip
  files.write_json(Path(a.out), result)
  return 0


def _read(data: str, names: set[str]) -> list[dict]:
  out = []
  with tarfile.open(data) as tar:
    for m in tar:
      name = m.name.rsplit("/", 1)[-1]
      if m.isfile() and name in names:
        labels = source_lib.labels_lib.parse_file_name(name)
        img = Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB")
        out.append({"name": name, "image": img, "age": labels.age, "gender": labels.gender})
  return sorted(out, key=lambda f: f["name"])


if __name__ == "__main__":
  sys.exit(main())
