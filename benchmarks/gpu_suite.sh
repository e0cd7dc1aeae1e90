#!/usr/bin/env bash
# Everything worth measuring on one GPU, in one call of under 10 minutes, results to $OUT as one
# archive (gpu_results.tgz; the device tool returns at most 8 files). Parts, in order of priority,
# each under its own time limit (one failing or timing out does not stop the rest; see *.log):
#   depthwise      benchmarks/depthwise.py: grouped conv vs shifted multiply-adds on this GPU,
#                  layer and MobileNetV2 (train step, inference), and the PyTorch peer
#   train_jax_128  jaxface's train step, 3 archs, batch 64, 128 px, fp32 and bf16
#   classic        experiments/classic_subset5000.sh with the splits on the device (--input device):
#                  custom and resnet50 (from scratch: no ResNet-50 weights on these machines)
#   train_jax_224  batch 256, 224 px, fp32 and bf16
#   train_torch_*  the PyTorch peer, eager, both shapes; torch.compile for resnet50 bf16 224 px
#   inference      both frameworks, batch 1 and 256
#   end_to_end     benchmarks/end_to_end.py (both input modes, custom, 3 epochs), if time is left
#
#   bash benchmarks/gpu_suite.sh                      on the GPU machine (see prepare_gpu_bundle.sh)
#   REHEARSE=1 TORCH_PY=/path/to/python-with-torch bash benchmarks/gpu_suite.sh
#                                                     here, on the CPU, tiny settings: catches typos
#
# Prepare the carried folders first with benchmarks/prepare_gpu_bundle.sh, then, with the device tool:
#   run(command="bash benchmarks/gpu_suite.sh", carry=[".whl", ".gpu"], timeout_s=600)
set -uo pipefail
cd "$(dirname "$0")/.."
FINAL=${OUT:-/tmp/out}
OUT=/tmp/gpu_results
rm -rf "$OUT" && mkdir -p "$OUT" "$FINAL"
export PYTHONUNBUFFERED=1 TFDS_DATA_DIR=/tmp/tfds
if [ -z "${REHEARSE:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
  S=20; E=(); SIZES=(128 224); ARCHS=(custom resnet50 mobilenet_v2); BIG=256; SCALE=1; PEAK_ARCH=resnet50; R=()
else
  export PYTHONPATH=$PWD JAX_PLATFORMS=cpu
  S=1; E=(--epochs 1 --image-size 32); SIZES=(32 32); ARCHS=(custom); BIG=2; SCALE=3; PEAK_ARCH=custom; R=(--rehearse)
fi
python3 -m pip show jax jaxlib flax optax orbax-checkpoint grain tensorflow-datasets array-record numpy torch torchvision \
  > "$OUT/pip_show.txt" 2>&1
grep -E "^(Name|Version)" "$OUT/pip_show.txt" | paste - -
B=benchmarks
T=${TORCH_PY:-python3}  # rehearsals: a Python with torch
data=.gpu/UTKFace_subset5000.tar.gz
t0=$(date +%s)
part() {
  local name=$1 limit=$2; shift 2
  echo "== $name ($(($(date +%s) - t0))s)"
  timeout $((limit * SCALE)) "$@" > "$OUT/$name.log" 2>&1 || echo "   $name failed or timed out: see $name.log"
  tail -n 3 "$OUT/$name.log"
}

part depthwise 55 python3 $B/depthwise.py --steps $S --peer --peer-python "$T" "${R[@]}" --name depthwise_gpu
part train_jax_128 80 python3 $B/train_throughput.py --archs "${ARCHS[@]}" --batch-sizes 64 --image-sizes "${SIZES[0]}" \
  --dtypes float32 bfloat16 --steps $S --name train_jax_gpu_128
part classic 180 env RUNS=/tmp/runs RESULTS="$OUT/classic_subset5000" INPUT=device ARCHS="${ARCHS[*]:0:2}" EXTRA="${E[*]}" \
  bash experiments/classic_subset5000.sh $data
part train_jax_224 60 python3 $B/train_throughput.py --archs "${ARCHS[@]}" --batch-sizes $BIG --image-sizes "${SIZES[1]}" \
  --dtypes float32 bfloat16 --steps $S --name train_jax_gpu_224
part train_torch_128 35 "$T" $B/peer_torch.py --mode train --archs "${ARCHS[@]}" --batch-sizes 64 --image-sizes "${SIZES[0]}" \
  --dtypes float32 bfloat16 --steps $S --name train_torch_gpu_128
part train_torch_224 35 "$T" $B/peer_torch.py --mode train --archs "${ARCHS[@]}" --batch-sizes $BIG --image-sizes "${SIZES[1]}" \
  --dtypes float32 bfloat16 --steps $S --name train_torch_gpu_224
part train_torch_compiled 75 "$T" $B/peer_torch.py --mode train --archs $PEAK_ARCH --batch-sizes $BIG \
  --image-sizes "${SIZES[1]}" --dtypes bfloat16 --compile on --steps $S --name train_torch_gpu_compiled
part inference 40 bash -c "python3 $B/inference.py --archs ${ARCHS[*]} --batch-sizes 1 $BIG --steps $S --name inference_jax_gpu \
  && $T $B/peer_torch.py --mode inference --archs ${ARCHS[*]} --batch-sizes 1 $BIG --steps $S --name inference_torch_gpu"
left=$((530 * SCALE - $(date +%s) + t0))
if [ $left -gt 40 ]; then
  part end_to_end $((left / SCALE < 150 ? left / SCALE - 5 : 150)) python3 $B/end_to_end.py --data $data --archs custom --image-size "${SIZES[0]}" \
    --batch-size 64 --epochs 3 --name end_to_end_gpu
fi
cp $B/results/*_gpu*.json "$OUT/" 2>/dev/null
echo "done in $(($(date +%s) - t0))s" | tee "$OUT/wall.txt"
tar czf "$FINAL/gpu_results.tgz" -C "$OUT" .
# Here: mkdir -p benchmarks/results/gpu && tar xzf gpu_results.tgz -C benchmarks/results/gpu/, move the
# classic_subset5000/* folders to experiments/results/classic_subset5000/, then run both table scripts.
