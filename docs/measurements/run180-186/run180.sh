#!/usr/bin/env bash
# Run 180 (session 27): session 26's unmeasured norm form. At 5..16 tokens the o projection
# adds into the residual and writes per-block sums of squares (RADD); the gate|up SiLU GEMV
# sums them per token and scales x as it loads it (INN): one norm kernel fewer per layer.
# Tests, then rows of the same binary with TLLM_IN_NORM=0 (the norm kernel) against 1.
set -u
source scripts/device/run_lib.sh
run_init run180 "${LIMIT:-400}"
B=build/r180
RUN_TEST_TIMEOUT=150 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.*:CudaAttention.*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  for b in 8 12 16; do
    for k in 0 1; do TLLM_IN_NORM=$k run_bench r180 qwen2.5-0.5b 05_b${b}_n${k}_$r -b $b; done
  done
done
for b in 8 16; do for k in 0 1; do TLLM_IN_NORM=$k run_bench r180 qwen2.5-1.5b 15_b${b}_n$k -b $b; done; done
for k in 0 1; do TLLM_IN_NORM=$k run_bench r180 qwen2.5-7b 7b_b8_n$k -b 8; done
for k in 0 1; do TLLM_IN_NORM=$k run_bench r180 qwen3-8b q3_8b_b8_n$k -b 8; done
run_done
