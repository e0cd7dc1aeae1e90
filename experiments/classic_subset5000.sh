#!/usr/bin/env bash
# classic_subset5000: the classic comparison, custom CNN vs ResNet-50, with the classic preset
# (50 epochs, batch 64, 128x128, Adam 1e-3, 0.1*MSE + BCE, augmentation) on subset5000.
# A GPU job (hours on a 2-core CPU). ResNet-50 starts from ImageNet weights when
# RESNET50_WEIGHTS names a torchvision file or converted folder; otherwise from scratch,
# and the results say so (config.json's "pretrained" is null).
#
#   bash experiments/classic_subset5000.sh [/path/to/UTKFace.tar.gz]
#   RESULTS=/somewhere bash experiments/classic_subset5000.sh ...   (benchmarks/gpu_suite.sh does this)
#   INPUT=device|stream|auto (default auto): the trainer's --input
#   ARCHS="custom" (default "custom resnet50"); EXTRA="--epochs 1": more train flags (rehearsals)
set -uo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
runs=${RUNS:-runs/classic_subset5000}
out=${RESULTS:-experiments/results/classic_subset5000}
pre=()
[ -n "${RESNET50_WEIGHTS:-}" ] && pre=(--pretrained "$RESNET50_WEIGHTS")

input=${INPUT:-auto}
archs=${ARCHS:-custom resnet50}
read -ra extra <<< "${EXTRA:-}"
for arch in $archs; do
  weights=()
  [ "$arch" = resnet50 ] && weights=("${pre[@]}")
  python3 -m jaxface.train --arch "$arch" --preset classic --input "$input" --data "$data" --workdir "$runs/$arch" \
    "${weights[@]}" "${extra[@]}"
done
for arch in $archs; do
  python3 -m jaxface.evaluate --workdir "$runs/$arch" --split validation --checkpoint best > /dev/null
  mkdir -p "$out/$arch"
  cp "$runs/$arch"/{config,history,run,eval_validation}.json "$runs/$arch/predictions_validation.csv" "$out/$arch/"
done
python3 -m jaxface.plot --workdirs $(for a in $archs; do echo "$out/$a"; done) --out "$out/figures"
