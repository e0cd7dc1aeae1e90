#!/usr/bin/env bash
# device_input: the custom CNN's cpu preset on subset5000 with the splits on the device
# (--input device: a whole epoch per jitted call), to compare with cpu_subset5000_regression/custom
# (the same recipe through the grain stream, one step per call). The regression head, as the
# cpu preset had when both ran (it now takes the distribution head).
#
#   bash experiments/device_input.sh [/path/to/UTKFace.tar.gz]   (default: $JAXFACE_DATA)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
run=runs/device_input/custom
out=experiments/results/device_input/custom
python -m jaxface.train --arch custom --preset cpu --age-head regression --input device --data "$data" --workdir "$run"
python -m jaxface.evaluate --workdir "$run" --split validation --checkpoint best > /dev/null
mkdir -p "$out"
cp "$run"/{config,history,run,eval_validation}.json "$run/predictions_validation.csv" "$out/"
echo "results in $out"
