#!/usr/bin/env bash
# Run 265 (session 50): run 264's diagnosis again, layer 1's input uploaded as bf16 (run 264
# threw there); test_quant_cuda with the stack-vs-CPU bound that allows op by op's own
# distance (run 264: int4 g64 prompt 2, KL 0.027).
set -u
source scripts/device/run_lib.sh
run_init run265 "${LIMIT:-300}"
N=build/r265
RUN_TEST_TIMEOUT=90 run_gtest t_bug $N/test_kernels_cuda --gtest_filter='CudaDecoderStack.DISABLED_Int8*' --gtest_also_run_disabled_tests
grep -hE "diagnose|^  |Failure" "$RUN_DIR"/t_bug.log | head -80
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -hE "^\[  FAILED|Failure|moe decode" -A3 "$RUN_DIR"/t_quant.log | grep -v "tinyllm info" | head -40
run_done
