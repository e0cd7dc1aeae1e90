#!/usr/bin/env bash
# Everything worth measuring on one GPU, results to $OUT (as one archive, gpu_results.tgz):
#   bash benchmarks/gpu_suite.sh bench     parts 1-3, about 6.5 minutes at most
#   bash benchmarks/gpu_suite.sh classic   parts 4-5, a few minutes (never run on a GPU yet)
#   bash benchmarks/gpu_suite.sh           all, which may pass 8 minutes: prefer two calls
#   1. jaxface's train-step throughput grid (3 archs x batch 64/256 x 128/224 px x fp32/bf16)
#   2. the PyTorch peer, same grid, eager and torch.compile
#   3. inference throughput, both frameworks
#   4. benchmarks/end_to_end.py: the trainer's loop in both input modes (stream, device), next
#      to the step alone, and each mode's input ceiling; custom and resnet50, 128 px, batch 64
#   5. experiments/classic_subset5000.sh: custom and resnet50 (from scratch: no ResNet-50
#      weights on these machines), classic preset, 50 epochs, batch 64, 128 px, on subset5000,
#      with the splits on the device (--input device)
# Prepare the carried folders first with benchmarks/prepare_gpu_bundle.sh. Each part runs
# on its own: one failing does not stop the rest (see $OUT/*.log).
set -uo pipefail
cd "$(dirname "$0")/.."
FINAL=${OUT:-/tmp/out}  # the device tool returns at most 8 files: everything goes into one archive
OUT=/tmp/gpu_results
mkdir -p "$OUT" "$FINAL"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TFDS_DATA_DIR=/tmp/tfds
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
B=benchmarks
data=.gpu/UTKFace_subset5000.tar.gz
t0=$(date +%s)
part() { local name=$1; shift; echo "== $name ($(( $(date +%s) - t0 ))s)"; timeout "$@" > "$OUT/$name.log" 2>&1 || echo "   $name failed: see $name.log"; }

what=${1:-all}  # bench | classic | all
if [ "$what" != classic ]; then
  # the grid: batch 64 at 128 px (the classic recipe's shape) and batch 256 at 224 px, fp32 and bf16
  part train_jax_128 100 python3 $B/train_throughput.py --batch-sizes 64 --image-sizes 128 --dtypes float32 bfloat16 --steps 20 --name train_jax_gpu_128
  part train_jax_224 100 python3 $B/train_throughput.py --batch-sizes 256 --image-sizes 224 --dtypes float32 bfloat16 --steps 20 --name train_jax_gpu_224
  part train_torch 60 python3 $B/peer_torch.py --mode train --batch-sizes 64 256 --image-sizes 128 224 --dtypes float32 bfloat16 --steps 20 --name train_torch_gpu_eager
  part train_torch_compiled 90 python3 $B/peer_torch.py --mode train --batch-sizes 256 --image-sizes 224 --dtypes bfloat16 --compile on --steps 20 --name train_torch_gpu_compiled
  part inference 40 bash -c "python3 $B/inference.py --batch-sizes 1 256 --name inference_jax_gpu && python3 $B/peer_torch.py --mode inference --batch-sizes 1 256 --name inference_torch_gpu"
fi
if [ "$what" != bench ]; then
  part end_to_end 180 python3 $B/end_to_end.py --data $data --archs custom resnet50 --image-size 128 --batch-size 64 --epochs 3 --name end_to_end_gpu
  # 2 x 50 epochs of 4,000 images with the splits on the device (the stream would be bound by the
  # host pipeline, about 2,000 images/s per process on the CPU machine: 4-6 minutes).
  part classic 360 env RUNS=/tmp/runs RESULTS="$OUT/classic_subset5000" INPUT=device bash experiments/classic_subset5000.sh $data
fi
cp $B/results/*_gpu*.json "$OUT/" 2>/dev/null
echo "done in $(( $(date +%s) - t0 ))s" | tee "$OUT/wall.txt"
tar czf "$FINAL/gpu_results.tgz" -C "$OUT" .
# unpack here with: tar xzf gpu_results.tgz -C benchmarks/results/gpu/ (then move the classic_* folders
# to experiments/results/classic_subset5000/ and run both table scripts)
