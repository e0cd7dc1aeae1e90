#!/usr/bin/env bash
# cpu_subset5000: the custom CNN and ImageNet-pretrained MobileNetV2, each with the
# cpu preset on subset5000, on this machine's CPU (each run under 45 minutes on 2 cores).
#
#   bash experiments/cpu_subset5000.sh [/path/to/UTKFace.tar.gz]   (default: $JAXFACE_DATA)
#
# Workdirs (checkpoints) go to runs/cpu_subset5000/ (not in git); config.json,
# history.json and run.json (command, commit, device, date, wall time) of each
# are copied to experiments/results/cpu_subset5000/<arch>/.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
weights=${MOBILENET_WEIGHTS:-../shared/weights/mobilenet_v2-b0353104.safetensors}
runs=runs/cpu_subset5000
out=experiments/results/cpu_subset5000

python -m jaxface.train --arch custom --preset cpu --data "$data" --workdir "$runs/custom"
python -m jaxface.train --arch mobilenet_v2 --preset cpu --data "$data" --pretrained "$weights" --workdir "$runs/mobilenet_v2"

for arch in custom mobilenet_v2; do
  mkdir -p "$out/$arch"
  cp "$runs/$arch"/{config,history,run}.json "$out/$arch/"
done
echo "results in $out"
