#!/usr/bin/env bash
# Run 185 (session 27): 2-step k groups in 4-warp blocks for short rows (K <= 1,024) at
# T = 2..16 (x one group ahead up to 8 tokens, not above): run 175's kernel table had the
# 0.5B gate|up 9,728 x 896 at T = 8 in 6.71 us (w4u2hx) against 7.54 as routed, at T = 16
# 7.45 (w4u2h) against 8.26. Tests, then TLLM_GEMV_SHORT_U2=0 (the old rule) against 1.
set -u
source scripts/device/run_lib.sh
run_init run185 "${LIMIT:-400}"
B=build/r185
RUN_TEST_TIMEOUT=200 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.SkinnyGemm*:CudaLinear.LinearSilu*:CudaLinear.LinearRope*:CudaLinear.LinearResidualNorm*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  for b in 2 4 8 12 16; do
    for k in 0 1; do TLLM_GEMV_SHORT_U2=$k run_bench r185 qwen2.5-0.5b 05_b${b}_u${k}_$r -b $b; done
  done
done
run_done
