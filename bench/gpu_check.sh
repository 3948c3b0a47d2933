#!/usr/bin/env bash
# Every GPU check in one run, for a session lent a GPU machine (see BENCHMARKS.md, "CUDA"):
#   here:   deno install && ../shared/gpu/prepare.sh --cuda
#   device: call 1, carry [".gpu-cuda"]:  bash .gpu-cuda/install.sh
#           call 2 (within 30 s), carry [".gpu"]:  bash .gpu/run.sh bash bench/gpu_check.sh
# Prints one JSON line per check (also into $OUT/checks.jsonl, the whole log into $OUT/log), in
# order of what matters most, and skips what would overrun BUDGET seconds (default 540).
# Rehearse on a CPU machine: GPU_CHECK_DEVICE=cpu GPU_CHECK_SMALL=1 bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DA_CACHE_DIR=/tmp/da-cache NO_COLOR=1
out=${OUT:-/tmp/gpu-check}; mkdir -p "$out"
exec > >(tee -a "$out/log") 2>&1
device=${GPU_CHECK_DEVICE:-cuda}
budget=${BUDGET:-540}
small=${GPU_CHECK_SMALL:-0}
has_gpu=0; command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1 && has_gpu=1
# bf16 runs need the compiler's mixed precision (issue 18); without it they run in float32.
bf16=(); grep -q '"bf16"' bench/train.ts && bf16=(--bf16 true)

emit() { echo "$1" | tee -a "$out/checks.jsonl"; }
# GPU memory in use now (MiB), or 0 without a GPU.
gpu_used() { ((has_gpu)) && nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1 || echo 0; }
# measure NAME SECONDS CMD...: runs CMD (at most SECONDS, and never past the budget), polls GPU
# memory every 100 ms, and emits CMD's last JSON line with the check's name, wall time and the
# GPU memory peak above the idle baseline (nvidia-smi's view: CUDA context + allocator pools).
measure() {
  local name=$1 limit=$2; shift 2
  local left=$((budget - SECONDS))
  if ((left < limit / 2)); then emit "{\"check\":\"$name\",\"skipped\":\"budget: ${left}s left\"}"; return; fi
  ((limit > left)) && limit=$left
  local base; base=$(gpu_used); local poll=/tmp/gpu-poll.$$
  ((has_gpu)) && { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$poll" & }
  local pid=$!; local t0=$SECONDS
  echo "== $name: $*"
  timeout "$limit" "$@" > /tmp/gpu-cmd.out 2>&1; local rc=$?
  ((has_gpu)) && kill "$pid" 2>/dev/null
  if ((rc == 0)); then tail -n 4 /tmp/gpu-cmd.out; else grep -v Download /tmp/gpu-cmd.out | tail -n 25; fi
  local peak=0; ((has_gpu)) && peak=$(sort -n "$poll" | tail -1)
  local line; line=$(grep '^{' /tmp/gpu-cmd.out | tail -1)
  python3 - "$name" "$rc" "$((SECONDS - t0))" "$((peak - base))" "${line:-{\}}" "$(grep -m1 -iE 'error|exception|failed' /tmp/gpu-cmd.out)" <<'PY' | tee -a "$out/checks.jsonl"
import json, sys
name, rc, wall, peak, line, tail = sys.argv[1:]
row = {"check": name, "rc": int(rc), "wall_s": int(wall), "gpu_peak_mib_smi": int(peak)}
try: row.update(json.loads(line))
except ValueError: pass
if int(rc) != 0: row["error"] = tail.strip()[:400]
print(json.dumps(row))
PY
}

((has_gpu)) && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
emit "{\"check\":\"start\",\"device\":\"$device\",\"ort_lib\":\"${ORT_LIB:-onnxruntime-node}\",\"bf16\":\"${bf16[*]:-unavailable}\"}"

# 1. The provider registers and offers the GPU (plugin route), then a tiny DPO run end to end.
[[ -n "${ORT_CUDA_PROVIDER:-}" && -f .gpu/ep_check.ts ]] && deno run -A .gpu/ep_check.ts "$ORT_LIB" "$ORT_CUDA_PROVIDER" 2>&1 | tail -4
# The runtime stage by stage (a segfault names no cause: the last stage that passed does), then
# the decoder's step from tiny to the SmolLM2 shape at 1 × 64.
for s in 1 2 3 4 5 6; do measure "smoke_$s" 40 deno run -A bench/cuda_smoke.ts "$s" "$device"; done
measure step_tiny 60 deno task bench --model tiny --batch_size 2 --max_length 64 --device "$device"
# A segfault says nothing: where gdb is there, the native stack of the same run names the frame.
if grep -q '"check": "step_tiny", "rc": 139' "$out/checks.jsonl" && command -v gdb >/dev/null; then
  timeout 90 gdb -q -batch -ex run -ex bt --args "$(command -v deno)" run -A bench/train.ts --model tiny \
    --batch_size 2 --max_length 64 --device "$device" 2>&1 | grep -E '^#|signal' | head -30
fi
((small)) || measure step_135m_1x64 90 deno task bench --model smollm2-135m --batch_size 1 --max_length 64 \
  --device "$device" --steps 3 --warmup 1
measure train_tiny_dpo 90 deno task train --loss dpo --device "$device" --output_dir /tmp/gpu-dpo --overwrite_output_dir
measure train_tiny_dpo_cpu 60 deno task train --loss dpo --device cpu --output_dir /tmp/cpu-dpo --overwrite_output_dir
((${#bf16[@]})) && measure train_tiny_dpo_bf16 90 deno task train --loss dpo --device "$device" "${bf16[@]}" \
  --output_dir /tmp/gpu-dpo-bf16 --overwrite_output_dir
python3 - <<'PY' | tee -a "$out/checks.jsonl"
import json, os
def last_eval(run):
    if not os.path.exists(f"{run}/metrics.jsonl"): return {}
    rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if "eval_loss" in l]
    return rows[-1] if rows else {}
runs = {"device": "/tmp/gpu-dpo", "cpu": "/tmp/cpu-dpo", "device_bf16": "/tmp/gpu-dpo-bf16"}
evals = {k: last_eval(v) for k, v in runs.items()}
print(json.dumps({"check": "learns_like_cpu", **{f"eval_pairwise_accuracy_{k}": e.get("eval_pairwise_accuracy") for k, e in evals.items()},
                  **{f"eval_loss_{k}": e.get("eval_loss") for k, e in evals.items()}}))
PY
# The device-trained checkpoint scored on the device (exact float32: no TF32) and on the CPU.
ckpt=$(ls -d /tmp/gpu-dpo/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -1)
if [[ -n "$ckpt" ]]; then
  data=data/samples/ultrafeedback_sample.jsonl
  ORT_CUDA_TF32=0 timeout 60 deno task score --model "$ckpt" --data $data --device "$device" > /tmp/score-dev.jsonl 2>/tmp/score-dev.err
  timeout 60 deno task score --model "$ckpt" --data $data --device cpu > /tmp/score-cpu.jsonl 2>/tmp/score-cpu.err
  python3 - <<'PY' | tee -a "$out/checks.jsonl"
import json
try:
    d = [json.loads(l) for l in open("/tmp/score-dev.jsonl")]; c = [json.loads(l) for l in open("/tmp/score-cpu.jsonl")]
    diffs = [abs(a[k]["logp_sum"] - b[k]["logp_sum"]) for a, b in zip(d, c) for k in ("chosen", "rejected")]
    tok = [abs(a[k]["logp_mean"] - b[k]["logp_mean"]) for a, b in zip(d, c) for k in ("chosen", "rejected")]
    print(json.dumps({"check": "checkpoint_logps_device_vs_cpu", "rows": len(d), "max_abs_diff_logp_sum": max(diffs),
                      "max_abs_diff_logp_mean": max(tok), "within_1e-3": max(tok) <= 1e-3}))
except Exception as e:
    print(json.dumps({"check": "checkpoint_logps_device_vs_cpu", "error": str(e), "stderr": open("/tmp/score-dev.err").read()[-300:]}))
PY
fi

# 2. The step beside PyTorch's on the same GPU, interleaved: ours, then torch, per shape.
# Without the compiler's bf16 the OLMo-2 shapes run in float32 (TF32) on both sides.
half=fp32; ((${#bf16[@]})) && half=bf16
# In order of what matters most: the mixed-precision step beside PyTorch's, the 1B shape, float32.
if ((small)); then shapes=("tiny 2 64 $half"); else
  shapes=("smollm2-135m 8 512 $half" "olmo2-1b 8 512 $half")
  [[ $half == fp32 ]] || shapes+=("smollm2-135m 8 512 fp32")
  shapes+=("olmo2-1b 8 2048 $half gc")
fi
placed=0
for shape in "${shapes[@]}"; do
  read -r model batch length dtype gc <<<"$shape"
  flags=(--model "$model" --batch_size "$batch" --max_length "$length" --steps 10 --warmup 3 --device "$device")
  [[ $dtype == bf16 ]] && flags+=("${bf16[@]}")
  [[ -n "${gc:-}" ]] && flags+=(--gradient_checkpointing true)
  tag="${model}_${batch}x${length}_${dtype}${gc:+_gc}"
  measure "ours_$tag" 150 deno task bench "${flags[@]}"
  if ((has_gpu)) && [[ $model != tiny ]]; then
    measure "torch_$tag" 120 python3 .gpu/torch_dpo_anchor.py --model "$model" --batch_size "$batch" --max_length "$length" \
      --dtype "$dtype" ${gc:+--gradient_checkpointing}
  fi
  # Once, on the first shape: where the nodes ran and what crossed to the host, and the same step
  # replayed as CUDA graphs (its last loss must equal the plain run's: same batch, same updates).
  if ! ((placed++)); then
    measure "placement_$tag" 120 deno task bench "${flags[@]}" --steps 3 --warmup 1 --profile
    measure "cuda_graph_$tag" 120 deno task bench "${flags[@]}" --cuda_graph true
  fi
done

# 3. WebGPU (onnxruntime-node's Dawn over Vulkan), one line each.
if ((has_gpu)); then
  measure webgpu_engine 60 deno task bench:engine --device webgpu --batch 8 --seq 512 --dim 768 --heads 12 --layers 4 --steps 20
  measure webgpu_bench_135m 90 deno task bench --device webgpu --batch_size 4 --max_length 512 --steps 5
  measure webgpu_train_tiny 60 deno task train --loss dpo --device webgpu --output_dir /tmp/gpu-webgpu --overwrite_output_dir
fi
emit "{\"check\":\"end\",\"elapsed_s\":$SECONDS}"
