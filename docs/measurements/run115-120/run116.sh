#!/usr/bin/env bash
# Run 116: the bf16 decode GEMV gives each warp whole groups of UNROLL k-steps (7B o_proj:
# 7 warps x 16 steps instead of 8 x 14) and loads what is left in one batch, so no warp ends
# on serial single-step round trips (build/rem) against main (build/main). Suites on rem,
# then decode rows alternated.
set -u
source scripts/device/run_lib.sh
run_init run116 "${LIMIT:-580}"
run_gtest t_lin build/rem/test_kernels_cuda --gtest_filter='CudaLinear*:CudaDecoderStack*:CudaAttention.RopeThen*'
run_gtest t_engine build/rem/test_engine_gpu
for round in 1 2 3; do
  for v in main rem; do run_bench $v qwen2.5-7b "s7_${v}_$round" -b 1; done
done
for v in main rem; do
  run_bench $v qwen2.5-7b "s7b8_$v" -b 8
  run_bench $v qwen2.5-7b "s7d39_$v" -b 1 -d 3900 -n 64
  run_bench $v qwen2.5-1.5b "s15b8_$v" -b 8
  run_bench $v qwen2.5-0.5b "s05b8_$v" -b 8
  TLLM_DECODER_STACK=0 run_bench $v qwen2.5-1.5b "s15op_$v" -b 1
  run_bench $v qwen2.5-7b "s7b32_$v" -b 32
done
run_trace 7b_rem build/rem/tinyllm qwen2.5-7b
RUN_TEST_TIMEOUT=240 run_gtest t_kernels build/rem/test_kernels_cuda --gtest_filter='-CudaLinear*:CudaDecoderStack*:CudaAttention.RopeThen*'
run_done
