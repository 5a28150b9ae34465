#!/usr/bin/env bash
# Run 295 (session 57): the same shared-memory opt-in bug in the quantized MoE decode kernels
# (moe_quant.cu: static partials of 4.6-16.9 KB not counted). The new int4 g32 T = 24 round of
# MoeCuda.QuantizedExpertsAtRealLayerSizes against HEAD's launcher (expected to fail) and the
# fixed one, then the rest of test_moe_cuda.
set -u
tar -xJf build/r295.tar.xz
source scripts/device/run_lib.sh
run_init run295 "${LIMIT:-235}"
B=build/r295
RUN_TEST_TIMEOUT=60 run_gtest t_nofix $B/test_moe_cuda_nofix --gtest_filter='MoeCuda.QuantizedExpertsAtRealLayerSizes'
grep -hE "Failure|exception" -A2 "$RUN_DIR"/t_nofix.log | head -6
RUN_TEST_TIMEOUT=60 run_gtest t_fix $B/test_moe_cuda --gtest_filter='MoeCuda.QuantizedExpertsAtRealLayerSizes'
RUN_TEST_TIMEOUT=90 run_gtest t_rest $B/test_moe_cuda --gtest_filter='-MoeCuda.QuantizedExpertsAtRealLayerSizes'
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_fix.log "$RUN_DIR"/t_rest.log | head -20
run_done
