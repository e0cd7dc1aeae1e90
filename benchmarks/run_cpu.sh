#!/usr/bin/env bash
# The CPU benchmark suite, as run for benchmarks/results/*_cpu*.json (2-core machine, ~15 minutes).
# Run on an idle machine: anything else running skews the numbers.
#   TORCH_PYTHON=/path/to/python-with-torch bash benchmarks/run_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TP=${TORCH_PYTHON:-python3}
B=benchmarks

python $B/train_throughput.py --archs custom mobilenet_v2 resnet50 --batch-sizes 32 --image-sizes 128 --steps 3 --name train_jax_cpu_128
python $B/train_throughput.py --archs custom --batch-sizes 32 --image-sizes 128 --dtypes bfloat16 --steps 3 --name train_jax_cpu_128_bf16
python $B/train_throughput.py --archs custom mobilenet_v2 --batch-sizes 32 --image-sizes 224 --steps 3 --name train_jax_cpu_224
python $B/train_throughput.py --archs custom --batch-sizes 8 128 --image-sizes 128 --steps 3 --name train_jax_cpu_batch

$TP $B/peer_torch.py --mode train --archs custom mobilenet_v2 resnet50 --batch-sizes 32 --image-sizes 128 --steps 3 --name train_torch_cpu_128
$TP $B/peer_torch.py --mode train --archs custom --batch-sizes 32 --image-sizes 128 --dtypes bfloat16 --steps 3 --name train_torch_cpu_128_bf16
$TP $B/peer_torch.py --mode train --archs custom --batch-sizes 32 --image-sizes 128 --compile on --steps 3 --name train_torch_cpu_128_compiled
$TP $B/peer_torch.py --mode train --archs custom mobilenet_v2 --batch-sizes 32 --image-sizes 224 --steps 3 --name train_torch_cpu_224
$TP $B/peer_torch.py --mode train --archs custom --batch-sizes 8 128 --image-sizes 128 --steps 3 --name train_torch_cpu_batch

python $B/inference.py --batch-sizes 1 64 --name inference_jax_cpu
taskset -c 0 python $B/inference.py --batch-sizes 1 --name inference_jax_cpu_1core
$TP $B/peer_torch.py --mode inference --batch-sizes 1 64 --name inference_torch_cpu
taskset -c 0 $TP $B/peer_torch.py --mode inference --threads 1 --batch-sizes 1 --name inference_torch_cpu_1core

python $B/make_table.py
