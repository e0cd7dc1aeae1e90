#!/usr/bin/env bash
# quality_augment: does photo-quality augmentation (--augment-quality, jaxface/data/quality.py) make the custom
# cpu preset robust to users' photos without costing the clean faces? The cpu preset's custom run with each
# degradation at probability 0.3 a face, against cpu_subset5000/custom (the same preset without it), both
# evaluated on degraded copies of the validation faces (experiments/degraded_eval.py).
#
#   bash experiments/quality_augment.sh [/path/to/UTKFace.tar.gz]   (default: $JAXFACE_DATA)
#   BASELINE=runs/cpu_subset5000/custom bash experiments/quality_augment.sh   (the baseline's workdir)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
baseline=${BASELINE:-runs/cpu_subset5000/custom}
run=runs/quality_augment/custom
out=experiments/results/quality_augment

python -m jaxface.train --arch custom --preset cpu --augment-quality 0.3 --data "$data" --workdir "$run"
python -m jaxface.evaluate --workdir "$run" --split validation --checkpoint best --calibrate > /dev/null
mkdir -p "$out/custom"
cp "$run"/{config,history,run,eval_validation,calibration}.json "$run/predictions_validation.csv" "$out/custom/"
python experiments/degraded_eval.py --workdirs "$baseline" "$run" --data "$data" --out "$out/degraded_validation.json"
python experiments/results_table.py --write
