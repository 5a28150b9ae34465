#!/usr/bin/env bash
# Run 198 (session 31): was run 197's faster 7B baseline (256.8 tok/s with TLLM_MLP_FLOW=0,
# where runs 186-196 read 249-250) the code or the card? Session 30's binary (r196) against
# run 197's (r197, flow off), alternated on the same card, 7B tg128 b1; and the rest of the
# CudaLinear suite that run 197's time limit cut.
set -u
source scripts/device/run_lib.sh
run_init run198 "${LIMIT:-300}"
for r in 1 2; do
  run_bench r196 qwen2.5-7b 7b_b1_r196_$r -b 1
  TLLM_MLP_FLOW=0 run_bench r197 qwen2.5-7b 7b_b1_r197off_$r -b 1
done
run_bench r196 qwen2.5-0.5b 05_b1_r196 -b 1
TLLM_MLP_FLOW=0 run_bench r197 qwen2.5-0.5b 05_b1_r197off -b 1
RUN_TEST_TIMEOUT=150 run_gtest t_linear build/r197/test_kernels_cuda --gtest_filter='CudaLinear.*-CudaLinear.SkinnyGemm*:CudaLinear.MlpFlow*:CudaLinear.LinearRopeKv*'
run_done
