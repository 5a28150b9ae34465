#!/usr/bin/env bash
# Run 272 (session 50): route_token with the softmax in warp 0's registers and the ranking
# 16 bytes of keys per load (run 271's split: 1.4 and 1.8 us of its 3.4). CudaDecoderStack.*
# and the model-level MoE test; Qwen3-30B-A3B int8 tg b1 against run 267's build, and
# Qwen2.5-0.5B bf16 (the D = 64 kernel, not MoE) against it. Session 51 adds: Qwen2.5-7B int4 g128
# tg b1 op by op (the default for dense quantized models) against the stack forced on
# (TLLM_DECODER_STACK=1), never measured at 7B (session 47 measured 0.5B / 1.5B only).
set -u
source scripts/device/run_lib.sh
run_init run272 "${LIMIT:-480}"
N=build/r272
RUN_TEST_TIMEOUT=60 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_stack.log | head -20
RUN_TEST_TIMEOUT=30 run_gtest t_quant $N/test_quant_cuda --gtest_filter='QuantCuda.MoeDecode*'
RUN_BENCH_TIMEOUT=60 run_bench r272 qwen3-30b-a3b 30b_int8_r272 -b 1 --quantization int8
RUN_BENCH_TIMEOUT=60 run_bench r267 qwen3-30b-a3b 30b_int8_r267 -b 1 --quantization int8
RUN_BENCH_TIMEOUT=20 run_bench r272 qwen2.5-0.5b 05b_r272 -b 1
RUN_BENCH_TIMEOUT=20 run_bench r267 qwen2.5-0.5b 05b_r267 -b 1
RUN_BENCH_TIMEOUT=120 run_bench r272 qwen2.5-7b 7b_int4_op -b 1 --quantization int4 --quant-group-size 128
TLLM_DECODER_STACK=1 RUN_BENCH_TIMEOUT=120 run_bench r272 qwen2.5-7b 7b_int4_stack -b 1 --quantization int4 --quant-group-size 128
grep -h "decoder stack" "$RUN_DIR"/7b_int4_*.log | head -4
run_done
