#!/usr/bin/env bash
# Run 266 (session 50): run 265's diagnosis plus layer 1 run op by op from the stack's own
# layer-0 output (is the whole stack's x what the op-by-op layer gives from that input?).
set -u
source scripts/device/run_lib.sh
run_init run266 "${LIMIT:-200}"
N=build/r266
RUN_TEST_TIMEOUT=90 run_gtest t_bug $N/test_kernels_cuda --gtest_filter='CudaDecoderStack.DISABLED_Int8*' --gtest_also_run_disabled_tests
grep -hE "diagnose|^  |Failure" "$RUN_DIR"/t_bug.log | head -80
run_done
