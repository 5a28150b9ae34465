#!/usr/bin/env bash
# Run 311 (session 62): the CUDA sampler on rows without a finite logit (all NaN, all -inf),
# against the CPU backend's tokens after its fix; the other CudaSample cases.
set -u
tar -xJf build/r311.tar.xz
source scripts/device/run_lib.sh
run_init run311 "${LIMIT:-200}"
RUN_TEST_TIMEOUT=150 run_gtest sample build/r311/test_kernels_cuda --gtest_filter='CudaSample.*'
grep -E "Failure|Expected|Which is|got.tokens|mode" "$RUN_DIR/sample.log" | head -40
run_done
