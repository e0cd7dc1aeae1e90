#!/usr/bin/env bash
# The shipped model (jaxface/shipped/faceres_utkface.jaxface): FaceRes on the full config, its training split sampled
# by race x age band x gender (--balance 0.5) with photo-quality augmentation; the 90 % interval calibrated on
# validation (Mondrian, by predicted age band); exported with float16 weights and the detector inside; then scored
# on the frozen test split against its float32 workdir, through the detector, and on the astronaut
# (experiments/shipped_check.py), and the model card written (docs/model-card.md).
#
#   bash experiments/shipped.sh [/path/to/UTKFace.tar.gz]          (default: $JAXFACE_DATA)
#
# 3 epochs of the balanced split (1,344 steps against full.sh's 1,040 for FaceRes), with the warm-up (0.6 of an epoch)
# about as many steps as full.sh's. About 80 minutes of training on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
run=${RUN:-runs/full_balanced/faceres}
out=experiments/results/full_balanced/faceres
model=jaxface/shipped/faceres_utkface.jaxface
note="Trained on UTKFace: for non-commercial research only (docs/model-card.md)"

[ -f runs/faceres_backbone/backbone.safetensors ] ||
  python -m jaxface.convert --arch faceres --source "${FACERES:-../shared/weights/faceres}" --out runs/faceres_backbone
python -m jaxface.train --arch faceres --preset cpu --config full --epochs 3 --warmup-epochs 0.6 --balance 0.5 \
  --augment-quality 0.15 --data "$data" --pretrained runs/faceres_backbone --workdir "$run"
python -m jaxface.evaluate --workdir "$run" --split validation --checkpoint best --calibrate --coverage 0.9 > /dev/null
python -m jaxface.evaluate --workdir "$run" --split test --checkpoint best > /dev/null
python -m jaxface.export --workdir "$run" --out "$model" --weights float16 --with-detector --note "$note"
mkdir -p "$out"
cp "$run"/{config,history,run,eval_validation,eval_test,calibration}.json "$run/predictions_test.csv" "$out/"
python experiments/shipped_check.py --workdir "$run" --model "$model" --data "$data" --out experiments/results/shipped
python experiments/model_card.py --write
python experiments/results_table.py --write
