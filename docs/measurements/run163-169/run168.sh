#!/usr/bin/env bash
# Run 168 (session 24): CudaBackendTest.UploadedBiasIsWhatTheNextGemvReads (run 167's version
# read the f32 download as bf16) on a build whose upload() releases the next kernel early
# (r168b, the old behaviour) and on the fixed one (r168), five times each.
set -u
source scripts/device/run_lib.sh
run_init run168 "${LIMIT:-200}"
for v in r168b r168 r168b r168; do
  RUN_TEST_TIMEOUT=60 run_gtest t_$v build/$v/test_kernels_cuda --gtest_filter='CudaBackendTest.UploadedBias*' --gtest_repeat=5
  grep -m2 "outputs differ" $RUN_DIR/t_$v.log
done
run_done
