#!/usr/bin/env bash
# Run 299 (session 58, H100): the rest of test_kernels_cuda on run 298's binary (72e3c2f; run
# 298 ran CudaAttention.*): CudaLinear, CudaDecoderStack, the elementwise, sampling and
# backend tests, so that every GPU suite has passed on the landed build.
set -u
tar -xJf build/r298.tar.xz
source scripts/device/run_lib.sh
run_init run299 "${LIMIT:-540}"
RUN_TEST_TIMEOUT=500 run_gtest t_kernels_rest build/r298/test_kernels_cuda --gtest_filter='-CudaAttention*'
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
run_done
