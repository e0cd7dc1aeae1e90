#!/usr/bin/env bash
# The CPU-speed suite of issue #34, as run for the *_cpu_preset*, detector_runtime, predict_speed, detector_cpu_xeon and
# xla_profile results (2-core machine, ~40 minutes). Run on an idle machine: anything else running skews the numbers.
#   TORCH_PYTHON=/path/to/python-with-torch BASELINE=<commit> WORKDIR=<trained cpu-preset workdir> \
#     JAXFACE_DATA=UTKFace.tar.gz bash benchmarks/run_cpu_speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TP=${TORCH_PYTHON:?a Python with torch}
BASELINE=${BASELINE:?the commit to compare with}
WORKDIR=${WORKDIR:?a trained workdir (predict and the detector benchmark label faces with it)}
B=benchmarks

# The train steps at the cpu presets' shapes: the baseline's jaxface (float32), this tree's, and PyTorch, one after another.
base=$(mktemp -d)
git worktree add --detach "$base/tree" "$BASELINE"
for shape in "preset64 custom resnet50 --image-sizes 64" "preset128 mobilenet_v2 --image-sizes 128"; do
  set -- $shape
  name=$1; shift
  archs=()
  while [[ $1 != --* ]]; do archs+=("$1"); shift; done
  (cd "$base/tree" && PYTHONPATH=. python $B/train_throughput.py --archs "${archs[@]}" --batch-sizes 64 "$@" --steps 5 --name "train_jax_cpu_${name}_baseline")
  cp "$base/tree/$B/results/train_jax_cpu_${name}_baseline.json" $B/results/
  python $B/train_throughput.py --archs "${archs[@]}" --batch-sizes 64 "$@" --dtypes float32 bfloat16 --steps 5 --name "train_jax_cpu_${name}"
  $TP $B/peer_torch.py --mode train --archs "${archs[@]}" --batch-sizes 64 "$@" --dtypes float32 bfloat16 --steps 5 --name "train_torch_cpu_${name}"
done
# The baseline's profile: this tree's profiling scripts copied into it (so its files record the baseline +dirty).
cp $B/xla_profile.py $B/train_throughput.py $B/common.py "$base/tree/$B/"
(cd "$base/tree" && python $B/xla_profile.py --archs custom resnet50 --name xla_profile_cpu_baseline)
cp "$base/tree/$B/results/xla_profile_cpu_baseline.json" $B/results/
git worktree remove --force "$base/tree"

python $B/xla_cpu_flags.py --sets default eigen_conv eigen_conv_dot onednn_conv --archs custom resnet50 --batch-size 64 --image-size 64 --steps 5 --name train_jax_cpu_flags_preset64
python $B/xla_cpu_flags.py --sets default eigen_conv eigen_conv_dot onednn_conv --archs mobilenet_v2 --batch-size 64 --image-size 128 --steps 5 --name train_jax_cpu_flags_preset128
python $B/xla_profile.py
python $B/detector_runtime.py
python $B/predict_speed.py --workdir "$WORKDIR" --data "$JAXFACE_DATA" --baseline "$BASELINE"
python $B/detector.py --workdir "$WORKDIR" --name detector_cpu_xeon
python $B/make_table.py
