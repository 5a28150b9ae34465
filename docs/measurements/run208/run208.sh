#!/usr/bin/env bash
# Run 208 (session 33): why run 207's 7B verification steps cost ~1.6x a decode step. Kernel
# timelines (CUPTI, bench/cuda/kernel_trace.cpp) of `generate` 96 tokens, plain and n-gram
# K = 2, and TLLM_STEP_TIMING of both.
set -u
source scripts/device/run_lib.sh
run_init run208 "${LIMIT:-300}"
B=build/r206/tinyllm
ids=$(seq -s, 100 163)
for k in 0 2; do
  spec=()
  [ "$k" -gt 0 ] && spec=(--speculative-config "{\"method\": \"ngram\", \"num_speculative_tokens\": $k}")
  TLLM_STEP_TIMING=1 timeout 120 $B generate --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    --prompt-ids "$ids" --max-tokens 96 --ignore-eos --temperature 0 "${spec[@]}" > "$RUN_DIR/timing_k$k.log" 2>&1
  run_log "timing k=$k rc=$? $(grep -E 'step timing|tokens in' "$RUN_DIR/timing_k$k.log" | cut -c1-250 | paste -sd' ')"
  CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$RUN_DIR/trace_k$k.csv \
    timeout 120 $B generate --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    --prompt-ids "$ids" --max-tokens 96 --ignore-eos --temperature 0 "${spec[@]}" > "$RUN_DIR/trace_k$k.log" 2>&1
  run_log "trace k=$k rc=$? $(ls -la $RUN_DIR/trace_k$k.csv 2>&1 | cut -c1-100)"
done
run_done
