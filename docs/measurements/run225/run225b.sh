#!/usr/bin/env bash
# Run 225b (session 39, H100): run 225's test_kernels_cuda slot ran out during
# CudaLinear.LinearRopeKvWriteMatchesUnfused (T = 33 and 65 added: its float reference at the
# 7B shape is slow); T = 65 dropped, the test again alone with the rest of CudaLinear.
set -u
source scripts/device/run_lib.sh
run_init run225b "${LIMIT:-200}"
RUN_TEST_TIMEOUT=150 run_gtest t_linear build/r225/test_kernels_cuda --gtest_filter='CudaLinear.LinearRopeKvWrite*:CudaLinear.AutoRoutes*:CudaLinear.Rejects*'
grep -hE "^\[  FAILED|Failure|^\[       OK" -A3 "$RUN_DIR"/t_*.log | head -30
run_done
