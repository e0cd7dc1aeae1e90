#!/usr/bin/env bash
# The shipped model (jaxface/shipped/mobilefacenet_utkface.jaxface): InsightFace's MobileFaceNet (its weights are
# for non-commercial research only) fine-tuned at 112 px on the full config, its training split sampled by race x
# age band x gender (--balance 0.5) with photo-quality augmentation, for 3 epochs (experiments/mobilefacenet.sh with
# EPOCHS=3; skipped when RUN holds that run finished already); the 90 % interval calibrated on validation (Mondrian,
# by predicted age band); exported with float16 weights and the detector inside; then scored on the frozen test
# split against its float32 workdir, through the detector, and on the astronaut (experiments/shipped_check.py), and
# the model card written (docs/model-card.md). It replaced FaceRes (experiments/results/full_balanced/faceres),
# chosen on the validation split (experiments/README.md).
#
#   bash experiments/shipped.sh [/path/to/UTKFace.tar.gz]          (default: $JAXFACE_DATA)
#
# Its training took 108 minutes on a 2-core Intel Xeon shared with other work (experiments/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${JAXFACE_DATA:?give the UTKFace archive or set JAXFACE_DATA}}
run=${RUN:-runs/full_balanced/mobilefacenet_3ep}
model=jaxface/shipped/mobilefacenet_utkface.jaxface
note="Trained on UTKFace from InsightFace's weights: for non-commercial research only (docs/model-card.md)"

[ -f "$run/eval_test.json" ] || EPOCHS=3 RUN="$run" bash experiments/mobilefacenet.sh "$data"
python -m jaxface.export --workdir "$run" --out "$model" --weights float16 --with-detector --note "$note"
python experiments/shipped_check.py --workdir "$run" --model "$model" --data "$data" --out experiments/results/shipped
python experiments/model_card.py --write
python experiments/results_table.py --write
