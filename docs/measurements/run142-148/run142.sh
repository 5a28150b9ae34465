#!/usr/bin/env bash
# Run 142 (session 21): attention + o projection + residual norm in one decode kernel
# (attention_o.cu). Tests first (the new suite, the attention / linear suites, the engine's HF
# goldens op by op so that decode steps take the fused kernel), then TLLM_FUSED_ATTN_O=0/1 in
# the same binary, alternated, and a kernel timeline with it on.
set -u
source scripts/device/run_lib.sh
run_init run142 "${LIMIT:-590}"
B=build/s21a
run_gtest t_attn_o $B/test_kernels_cuda --gtest_filter='CudaAttentionO*'
run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention.*:CudaLinear*:CudaDecoderStack*'
TLLM_DECODER_STACK=0 run_gtest t_engine_opbyop $B/test_engine_gpu
off() { TLLM_FUSED_ATTN_O=0 run_bench s21a "$@"; }
for round in 1 2; do
  off qwen2.5-7b "s7_off_$round" -b 1
  run_bench s21a qwen2.5-7b "s7_on_$round" -b 1
done
off qwen3-8b q8_off -b 1
run_bench s21a qwen3-8b q8_on -b 1
TLLM_DECODER_STACK=0 off qwen2.5-0.5b s05_nostack_off -b 1
TLLM_DECODER_STACK=0 run_bench s21a qwen2.5-0.5b s05_nostack_on -b 1
run_trace s7_on $B/tinyllm qwen2.5-7b
run_gtest t_engine $B/test_engine_gpu
run_done
