#!/usr/bin/env bash
# Run 178 (session 26): at 5..16 tokens the o projection only adds into the residual and the
# gate|up GEMV normalises its rows itself (linear_residual_norm_silu_mul; gemv.cu RADD / INN):
# one norm kernel fewer per layer. Tests, then rows of the same binary with TLLM_IN_NORM=0
# (the norm kernel) against 1, alternated.
set -u
source scripts/device/run_lib.sh
run_init run178 "${LIMIT:-400}"
B=build/r178
RUN_TEST_TIMEOUT=120 run_gtest t_split $B/test_kernels_cuda --gtest_filter='CudaLinear.LinearResidualNormSiluMul*:CudaLinear.LinearResidualNormMatches*:CudaLinear.LinearSilu*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  for b in 8 12 16; do
    for k in 0 1; do TLLM_IN_NORM=$k run_bench r178 qwen2.5-0.5b 05_b${b}_n${k}_$r -b $b; done
  done
done
for b in 8 16; do for k in 0 1; do TLLM_IN_NORM=$k run_bench r178 qwen2.5-1.5b 15_b${b}_n$k -b $b; done; done
for k in 0 1; do TLLM_IN_NORM=$k run_bench r178 qwen2.5-7b 7b_b8_n$k -b 8; done
for k in 0 1; do TLLM_IN_NORM=$k run_bench r178 qwen3-8b q3_8b_b8_n$k -b 8; done
run_done
