#!/usr/bin/env bash
# Run 143 (session 21): attention_o launch choices. Run 142 (2 blocks per SM, 252 blocks,
# release at completion): 7B bf16 tg b1 249.9 -> 241.0, attention + o 18.2 us marginal
# (level with the unfused pair), gate|up +2 us and down +2.3 us. Here: 1 block per SM
# (112 blocks at 7B, co-resident with the q|k|v GEMV), the release points, the K / V hint,
# a larger staging budget.
set -u
source scripts/device/run_lib.sh
run_init run143 "${LIMIT:-590}"
B=build/s21b
run_gtest t_attn_o $B/test_kernels_cuda --gtest_filter='CudaAttentionO*'
TLLM_DECODER_STACK=0 run_gtest t_engine_opbyop $B/test_engine_gpu
v() { local label=$1; shift; env "$@" build/s21b/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy \
  --device cuda --max-model-len 4096 -p 16 -n 128 -r 3 -b 1 > "$RUN_DIR/$label.log" 2>&1
  run_log "$label rc=$? $(grep -E '^\| tg' "$RUN_DIR/$label.log" | cut -c1-70 | paste -sd' ')"; }
v off TLLM_FUSED_ATTN_O=0
v b1r0 TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_RELEASE=0
v b1r1 TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_RELEASE=1
v b1r2 TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_RELEASE=2
v b1r0h TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_RELEASE=0 TLLM_ATTN_O_KV_HINT=1
v b1r0s216 TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_RELEASE=0 TLLM_ATTN_O_SMEM_KB=216
v b2r1 TLLM_ATTN_O_BPS=2 TLLM_ATTN_O_RELEASE=1
v off2 TLLM_FUSED_ATTN_O=0
TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_RELEASE=0 run_trace b1r0 $B/tinyllm qwen2.5-7b
TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_RELEASE=1 run_trace b1r1 $B/tinyllm qwen2.5-7b
TLLM_FUSED_ATTN_O=0 run_trace off $B/tinyllm qwen2.5-7b
run_done
