#!/usr/bin/env bash
# Run 264 (session 50): the int8 stack bug. The disabled reproduction now diagnoses where x
# goes wrong (each layer alone, stack against op by op, for the int8 weights and their
# dequantized bf16 twin; the MoE output fitted over every expert's f64 output). Also the
# session-49 test edits that no GPU ran: CudaDecoderStack.*, test_quant_cuda.
set -u
source scripts/device/run_lib.sh
run_init run264 "${LIMIT:-300}"
N=build/r264
RUN_TEST_TIMEOUT=90 run_gtest t_bug $N/test_kernels_cuda --gtest_filter='CudaDecoderStack.DISABLED_Int8*' --gtest_also_run_disabled_tests
grep -hE "diagnose|^  |Failure" "$RUN_DIR"/t_bug.log | head -60
RUN_TEST_TIMEOUT=90 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -hE "^\[  FAILED|Failure" -A4 "$RUN_DIR"/t_stack.log "$RUN_DIR"/t_quant.log | head -30
run_done
