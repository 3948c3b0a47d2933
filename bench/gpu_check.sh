#!/usr/bin/env bash
# All GPU checks in one run, for a session lent a GPU machine (see DEVELOPERS.md):
#   deno install && ../shared/gpu/prepare.sh
#   device: bash .gpu/run.sh bash bench/gpu_check.sh      (carry: [".gpu"], timeout ~500 s)
# Prints one JSON line per check; paste them into BENCHMARKS.md with the device.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DA_CACHE_DIR=/tmp/da-cache
run() { echo "== $*"; timeout "${LIMIT:-150}" "$@" 2>&1 | tail -n 3; }
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader || true
# 1. The engine on WebGPU: step time and TFLOP/s, state kept in GPU buffers.
run deno task bench:engine --device webgpu --batch 8 --seq 512 --dim 768 --heads 12 --layers 4 --steps 20
# 2. No leak over thousands of steps: host RSS and GPU memory before/after.
run deno task bench:engine --device webgpu --seq 64 --steps 2000
nvidia-smi --query-gpu=memory.used --format=csv,noheader || true
# 3. A real decoder's full train step (SmolLM2-135M shape) on WebGPU and, for comparison, CPU.
run deno task bench --device webgpu --batch_size 4 --max_length 512 --steps 5
LIMIT=200 run deno task bench --device cpu --batch_size 1 --max_length 128 --steps 2
# 4. Training end to end on WebGPU learns like on the CPU (eval accuracy in the summary).
run deno task train --loss dpo --device webgpu --output_dir /tmp/gpu-dpo
