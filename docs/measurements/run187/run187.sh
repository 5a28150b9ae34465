#!/usr/bin/env bash
# Run 187 (session 28): the measurement session 27 wrote for next_split_norm_o8warps.diff
# (applied on 9308c35, built, packed as build/r187).
# Same binary: the norm kernel (TLLM_IN_NORM=0), the split norm with the o GEMV in 16-warp
# blocks (=1, run 184's form) and in 8-warp blocks (TLLM_IN_NORM_O_WARPS=8), and timelines.
set -u
source scripts/device/run_lib.sh
run_init run187 "${LIMIT:-400}"
B=build/r187
RUN_TEST_TIMEOUT=100 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.LinearResidualNormSilu*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
TLLM_IN_NORM_O_WARPS=8 RUN_TEST_TIMEOUT=60 run_gtest t_engine_o8 $B/test_engine_gpu
for r in 1 2; do
  for b in 8 12 16; do
    TLLM_IN_NORM=0 run_bench r187 qwen2.5-0.5b 05_b${b}_off_$r -b $b
    TLLM_IN_NORM=1 run_bench r187 qwen2.5-0.5b 05_b${b}_o16_$r -b $b
    TLLM_IN_NORM_O_WARPS=8 run_bench r187 qwen2.5-0.5b 05_b${b}_o8_$r -b $b
  done
done
for b in 8 16; do
  TLLM_IN_NORM=0 run_bench r187 qwen2.5-1.5b 15_b${b}_off -b $b
  TLLM_IN_NORM_O_WARPS=8 run_bench r187 qwen2.5-1.5b 15_b${b}_o8 -b $b
done
TLLM_IN_NORM=0 run_trace 05_b16_off $B/tinyllm qwen2.5-0.5b -b 16
TLLM_IN_NORM_O_WARPS=8 run_trace 05_b16_o8 $B/tinyllm qwen2.5-0.5b -b 16
run_done
