#!/usr/bin/env bash
# Run 183 (session 27): the norm split between the o and gate|up GEMVs, run 181's form with
# its two waits moved off the blocks' paths: the o GEMV's residual rows and the gate|up
# GEMV's partial sums copied by cp.async beside the weight stream (run 181 loaded the
# residual before the k loop), each token's partials summed by the warp that copied them
# (no extra block barrier). Tests, rows with TLLM_IN_NORM=0 against 1, timelines at 0.5B b16.
set -u
source scripts/device/run_lib.sh
run_init run183 "${LIMIT:-400}"
B=build/r183
RUN_TEST_TIMEOUT=150 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.LinearResidualNorm*:CudaLinear.LinearSilu*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  for b in 8 12 16; do
    for k in 0 1; do TLLM_IN_NORM=$k run_bench r183 qwen2.5-0.5b 05_b${b}_n${k}_$r -b $b; done
  done
done
for b in 8 16; do for k in 0 1; do TLLM_IN_NORM=$k run_bench r183 qwen2.5-1.5b 15_b${b}_n$k -b $b; done; done
for k in 0 1; do TLLM_IN_NORM=$k run_bench r183 qwen2.5-7b 7b_b8_n$k -b 8; done
for k in 0 1; do TLLM_IN_NORM=$k run_trace 05_b16_n$k $B/tinyllm qwen2.5-0.5b -b 16; done
run_done
