#!/usr/bin/env bash
# Run 200 (session 31): the landed form of run 199's change (the one-token GEMV kernels load x
# address-first; every other kernel's machine code is r196's again) against r196, alternated:
# 7B tg128 b1 and b8, Qwen3-8B b1; the linear tests and the HF goldens on it.
set -u
source scripts/device/run_lib.sh
run_init run200 "${LIMIT:-300}"
B=build/r200
for r in 1 2; do
  run_bench r196 qwen2.5-7b 7b_b1_r196_$r -b 1
  run_bench r200 qwen2.5-7b 7b_b1_r200_$r -b 1
done
run_bench r196 qwen2.5-7b 7b_b8_r196 -b 8
run_bench r200 qwen2.5-7b 7b_b8_r200 -b 8
run_bench r196 qwen3-8b q3_8b_b1_r196 -b 1
run_bench r200 qwen3-8b q3_8b_b1_r200 -b 1
RUN_TEST_TIMEOUT=100 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.*-CudaLinear.SkinnyGemm*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
run_done
