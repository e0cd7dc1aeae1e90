#!/usr/bin/env bash
# full: the best CPU-trainable model of cpu_subset5000 (MobileNetV2, ImageNet-pretrained, cpu
# preset: layers 0-13 frozen and cached) trained on the full config, evaluated on its frozen
# test split. 16,643 training images: 8 epochs instead of the preset's 30 keep it within
# about 45 minutes on a 2-core CPU.
#
#   bash experiments/full.sh [/path/to/UTKFace.tar.gz]   (default: $JAXFACE_DATA)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
weights=${MOBILENET_WEIGHTS:-../shared/weights/mobilenet_v2-b0353104.safetensors}
run=runs/full/mobilenet_v2
out=experiments/results/full/mobilenet_v2

python -m jaxface.train --arch mobilenet_v2 --preset cpu --config full --epochs 8 --data "$data" --pretrained "$weights" --workdir "$run"
python -m jaxface.evaluate --workdir "$run" --split test --checkpoint best > /dev/null
mkdir -p "$out"
cp "$run"/{config,history,run,eval_test}.json "$run/predictions_test.csv" "$out/"
python -m jaxface.plot --workdirs "$out" --split test --out "$(dirname "$out")/figures"
python experiments/results_table.py --write
