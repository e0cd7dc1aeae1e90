#!/usr/bin/env bash
# The photo-quality augmentation, measured: the shipped recipe (experiments/shipped.sh) again without
# --augment-quality, exported the same way (float16), then both exports scored on the frozen test split, clean and
# with each degradation applied (experiments/quality_ab.py).
#
#   bash experiments/quality_ab.sh [/path/to/UTKFace.tar.gz]          (default: $JAXFACE_DATA)
#
# About 80 minutes of training on a 2-core CPU, then ~10 minutes of scoring.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
run=${RUN:-runs/full_balanced/faceres_no_quality}
out=experiments/results/full_balanced/faceres_no_quality
model=runs/faceres_no_quality.jaxface
note="Trained on UTKFace: for non-commercial research only (docs/model-card.md)"

[ -f runs/faceres_backbone/backbone.safetensors ] ||
  python -m jaxface.convert --arch faceres --source "${FACERES:-../shared/weights/faceres}" --out runs/faceres_backbone
python -m jaxface.train --arch faceres --preset cpu --config full --epochs 3 --warmup-epochs 0.6 --balance 0.5 \
  --augment-quality 0 --data "$data" --pretrained runs/faceres_backbone --workdir "$run"
python -m jaxface.evaluate --workdir "$run" --split validation --checkpoint best --calibrate --coverage 0.9 > /dev/null
python -m jaxface.evaluate --workdir "$run" --split test --checkpoint best > /dev/null
python -m jaxface.export --workdir "$run" --out "$model" --weights float16 --note "$note"
mkdir -p "$out"
cp "$run"/{config,history,run,eval_validation,eval_test,calibration}.json "$run/predictions_test.csv" "$out/"
python experiments/quality_ab.py --data "$data" --models jaxface/shipped/faceres_utkface.jaxface "$model" \
  --out experiments/results/quality_ab.json
