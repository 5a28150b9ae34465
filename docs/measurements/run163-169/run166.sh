#!/usr/bin/env bash
# Run 166 (session 24): run 165's build with upload() no longer releasing the next kernel
# early (the stale-bias failures of CudaLinear in run 165). First the new regression test on a
# build that keeps the early release (r166b: it should fail), then every gpu suite on r166,
# then a few batched rows again against run 157's build.
set -u
source scripts/device/run_lib.sh
run_init run166 "${LIMIT:-560}"
RUN_TEST_TIMEOUT=60 run_gtest t_bug build/r166b/test_kernels_cuda --gtest_filter='CudaBackendTest.UploadedBias*:CudaLinear.SkinnyGemm*:CudaLinear.AutoRoutes*' --gtest_repeat=2
B=build/r166
RUN_TEST_TIMEOUT=60 run_gtest t_fix $B/test_kernels_cuda --gtest_filter='CudaBackendTest.UploadedBias*' --gtest_repeat=5
RUN_TEST_TIMEOUT=220 run_gtest t_kern $B/test_kernels_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=90 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_quant $B/test_quant_cuda
for m in qwen2.5-0.5b qwen2.5-7b; do
  for b in 4 32; do
    for v in r157 r166; do run_bench $v $m ${m}_b${b}_$v -b $b; done
  done
done
for v in r157 r166; do run_bench $v qwen2.5-0.5b 05_b1_$v -b 1; done
run_done
