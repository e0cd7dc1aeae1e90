#!/usr/bin/env bash
# predict_demo: jaxface.predict on real photos that ship with scikit-image (astronaut: one face;
# chelsea, a cat, and coffee: none), with a trained workdir. Writes the JSON lines, the
# annotated images and run.json to experiments/results/predict_demo/.
#   bash experiments/predict_demo.sh [WORKDIR]   (default runs/cpu_subset5000/custom: the custom cpu
#   preset run of experiments/cpu_subset5000.sh, calibrated)
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=${1:-runs/cpu_subset5000/custom}
out=experiments/results/predict_demo
photos=/tmp/jaxface_demo_photos  # a fixed name: it appears in the records
mkdir -p "$photos"
python - "$photos" <<'PY'
import sys
from PIL import Image
from skimage import data
for name in ("astronaut", "chelsea", "coffee"):
  Image.fromarray(getattr(data, name)()).save(f"{sys.argv[1]}/{name}.png")
PY
mkdir -p "$out"
start=$(date +%s.%N)
python -m jaxface.predict "$photos" --workdir "$workdir" --out "$out/faces.jsonl" --annotate "$out/annotated" 2> "$out/summary.txt"
python - "$out" "$workdir" "$start" "$*" <<'PY'
import json, sys, time
from jaxface import provenance
out, workdir, start, args = sys.argv[1:]
rec = provenance.record(time.time() - float(start), ["experiments/predict_demo.sh", *args.split()])
rec.update({"workdir": workdir, "inputs": "scikit-image astronaut, chelsea, coffee (PNG)"})
open(f"{out}/run.json", "w").write(json.dumps(rec, indent=2) + "\n")
PY
rm -f "$out/annotated/chelsea.png" "$out/annotated/coffee.png"  # unchanged copies: no faces drawn
cat "$out/faces.jsonl" "$out/summary.txt"
