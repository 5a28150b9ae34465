#!/usr/bin/env bash
# Run 165 (session 24): batched decode through the skinny GEMM (T <= 32 where it beats
# cuBLASLt, gemv_cfg's launch shapes, SILU fused up to 32 tokens). Tests, then the b8 / b16 /
# b32 rows alternated against run 157's build (= 3b0f28a), and b1 rows as a check.
set -u
source scripts/device/run_lib.sh
run_init run165 "${LIMIT:-560}"
B=build/r165
RUN_TEST_TIMEOUT=200 run_gtest t_kern $B/test_kernels_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=90 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_quant $B/test_quant_cuda
for m in qwen2.5-0.5b qwen2.5-1.5b qwen2.5-7b; do
  for b in 8 16 32; do
    for v in r157 r165; do run_bench $v $m ${m}_b${b}_$v -b $b; done
  done
done
for v in r157 r165; do run_bench $v qwen2.5-7b 7b_b1_$v -b 1; done
for v in r157 r165; do run_bench $v qwen3-8b q8_b8_$v -b 8; done
run_trace 05_b32 $B/tinyllm qwen2.5-0.5b -b 32
run_done
