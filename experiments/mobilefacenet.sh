#!/usr/bin/env bash
# InsightFace's MobileFaceNet (w600k_mbf; its weights are for non-commercial research only) fine-tuned with the
# shipped model's recipe (experiments/shipped.sh: the full config, its training split balanced with --balance 0.5,
# photo-quality augmentation) at its own 112 px, for EPOCHS epochs (default 2) rather than 3, so that it fits a
# 3-hour session on 2 cores with its evaluation. Its frozen-feature probe had the best gender, and the
# best on Asian faces, of the backbones probed (experiments/results/probe_mobilefacenet.json). Evaluated on
# validation (with the Mondrian calibration) and on the frozen test split; exported (float16) and scored beside the
# shipped FaceRes on test faces clean and degraded as users' photos are (experiments/degraded.py).
#
#   [EPOCHS=2] bash experiments/mobilefacenet.sh [/path/to/UTKFace.tar.gz]          (default: $JAXFACE_DATA)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
epochs=${EPOCHS:-2}
run=${RUN:-runs/full_balanced/mobilefacenet_${epochs}ep}
out=experiments/results/full_balanced/mobilefacenet_${epochs}ep
model=runs/mobilefacenet_${epochs}ep.jaxface
note="Trained on UTKFace from InsightFace's weights: for non-commercial research only"

[ -f runs/mobilefacenet_backbone/backbone.safetensors ] ||
  python -m jaxface.convert --arch mobilefacenet ${MOBILEFACENET:+--source "$MOBILEFACENET"} --out runs/mobilefacenet_backbone
python -m jaxface.train --arch mobilefacenet --preset cpu --config full --epochs "$epochs" --warmup-epochs 0.2 --balance 0.5 \
  --augment-quality 0.15 --data "$data" --pretrained runs/mobilefacenet_backbone --workdir "$run"
python -m jaxface.evaluate --workdir "$run" --split validation --checkpoint best --calibrate --coverage 0.9 > /dev/null
python -m jaxface.evaluate --workdir "$run" --split test --checkpoint best > /dev/null
mkdir -p "$out"
cp "$run"/{config,history,run,eval_validation,eval_test,calibration}.json "$run"/predictions_*.csv "$out/"
python -m jaxface.export --workdir "$run" --out "$model" --weights float16 --note "$note"
python experiments/degraded.py --data "$data" --models jaxface/shipped/faceres_utkface.jaxface "$model" \
  --out "$out/degraded.json"
