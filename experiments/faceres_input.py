"""FaceRes with its released heads, zero-shot, fed each way: channel order (RGB, as @vladmandic/human feeds it, or
BGR) and framing (UTKFace's crop, or zoomed out so the face fills less of it), on the subset5000 validation faces.

  python experiments/faceres_input.py [--data UTKFace.tar.gz] [--faceres ../shared/weights/faceres]

What the port's default channel order rests on (``jaxface/models/faceres.py``).
A framing z > 1 takes a square z times the crop's side around its centre (black
beyond it) before the resize to 224 px. Writes
experiments/results/faceres_input.json: age MAE, mean signed error and gender
accuracy per variant.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxface import files, metrics, provenance  # noqa: E402
from jaxface.data import prepare  # noqa: E402
from jaxface.data import source as source_lib  # noqa: E402

ZOOMS = (1.0, 1.15, 1.3)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", help="UTKFace archive or folder (default: $JAXFACE_DATA)")
  p.add_argument("--faceres", default=str(ROOT.parent / "shared" / "weights" / "faceres"))
  args = p.parse_args()
  t0 = time.perf_counter()
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from jaxface.models import faceres as faceres_model
  from jaxface.ports import backbone, faceres

  data = str(source_lib.locate(args.data))
  src = prepare.prepare(data, "subset5000", 64, None).as_data_source("validation")
  names = [src[i]["file_name"] for i in range(len(src))]
  names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
  wanted = set(names)
  by_name = {n: d for n, d in source_lib.iter_files(Path(data)) if n in wanted}
  faces = [Image.open(io.BytesIO(by_name[n])).convert("RGB") for n in names]
  age = np.array([int(n.split("_")[0]) for n in names])
  female = np.array([int(n.split("_")[1]) for n in names])

  flat = faceres.to_flat(faceres.model_files(args.faceres))
  results = []
  for bgr in (False, True):
    model = faceres_model.FaceResReleased(bgr=bgr, rngs=nnx.Rngs(0))
    backbone.load_backbone(model, flat, args.faceres)

    @jax.jit
    def forward(x, model=model):
      f = model.net(x)
      return jax.nn.softmax(model.age_pred(f)) @ jnp.arange(100.0), jax.nn.sigmoid(model.gender_pred(f))[:, 0]

    for zoom in ZOOMS:
      pred, p_male = [], []
      for i in range(0, len(faces), 50):
        batch = []
        for im in faces[i : i + 50]:
          m = (zoom - 1) / 2 * im.size[0]
          sq = im.crop((-m, -m, im.size[0] + m, im.size[1] + m)).resize((224, 224), Image.Resampling.BILINEAR)
          batch.append(np.asarray(sq, np.float32) / 255.0)
        a, g = forward(np.stack(batch))
        pred.append(np.asarray(a))
        p_male.append(np.asarray(g))
      pred, p_female = np.concatenate(pred), 1.0 - np.concatenate(p_male)
      s = metrics.summary(age, pred, female, p_female)
      row = {"channels": "BGR" if bgr else "RGB", "zoom": zoom, **s, "mean_error": float(np.mean(pred - age))}
      results.append(row)
      print(row, flush=True)
  out = {"split": "subset5000/validation", "rows": results, **provenance.record(time.perf_counter() - t0)}
  files.write_json(ROOT / "experiments" / "results" / "faceres_input.json", out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
