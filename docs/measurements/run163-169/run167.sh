#!/usr/bin/env bash
# Run 167 (session 24): CudaBackendTest.UploadedBiasIsWhatTheNextGemvReads failed in round 0
# on both of run 166's builds; the same test, now with its first rounds synchronised and the
# first mismatching values printed.
set -u
source scripts/device/run_lib.sh
run_init run167 "${LIMIT:-200}"
RUN_TEST_TIMEOUT=60 run_gtest t_bias build/r167/test_kernels_cuda --gtest_filter='CudaBackendTest.UploadedBias*' --gtest_repeat=1
grep -m6 "outputs differ\|DIAG" $RUN_DIR/t_bias.log
run_done
