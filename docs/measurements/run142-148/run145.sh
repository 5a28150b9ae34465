#!/usr/bin/env bash
# Run 145 (session 21): attention_o with (1) the heads' partial sums added in 64-bit fixed
# point by every block (order-independent, no per-chunk counter and no head-by-head sum in
# one block: run 144's stamps put 7-9 us there), (2) Wo staged by bulk copies (TMA) from warp
# 0 instead of 16-byte cp.async from every thread (the issue of thousands of cp.async held the
# attention back), (3) the unstaged rows requested into L2 before the wait.
set -u
source scripts/device/run_lib.sh
run_init run145 "${LIMIT:-420}"
B=build/s21d
run_gtest t_attn_o $B/test_kernels_cuda --gtest_filter='CudaAttentionO*'
TLLM_DECODER_STACK=0 run_gtest t_engine_opbyop $B/test_engine_gpu
v() { local label=$1; shift; env "$@" $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy \
  --device cuda --max-model-len 4096 -p 16 -n 128 -r 3 -b 1 > "$RUN_DIR/$label.log" 2>&1
  run_log "$label rc=$? $(grep -E '^\| tg' "$RUN_DIR/$label.log" | cut -c1-70 | paste -sd' ')"
  grep -A9 "attention_o trace" "$RUN_DIR/$label.log" | grep -v "^\[tinyllm\|^model\|^limits\|^$\|^|" | tee -a "$RUN_DIR/progress.txt"; }
v off TLLM_FUSED_ATTN_O=0
v b1 TLLM_ATTN_O_BPS=1
v b2 TLLM_ATTN_O_BPS=2
v b3 TLLM_ATTN_O_BPS=3
v off2 TLLM_FUSED_ATTN_O=0
v b1t TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_TRACE=1
v b2t TLLM_ATTN_O_BPS=2 TLLM_ATTN_O_TRACE=1
v b3t TLLM_ATTN_O_BPS=3 TLLM_ATTN_O_TRACE=1
TLLM_ATTN_O_BPS=2 run_trace b2 $B/tinyllm qwen2.5-7b
run_done
