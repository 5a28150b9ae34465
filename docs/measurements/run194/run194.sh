#!/usr/bin/env bash
# Run 194 (session 29, review mend): the CUDA sampler's batch check moved into the shared
# check_sample_batch; CudaSample.* (RejectsBadBatches among them) and test_engine_gpu on c14df56.
set -u
source scripts/device/run_lib.sh
run_init run194 "${LIMIT:-300}"
B=build/r194
RUN_TEST_TIMEOUT=90 run_gtest t_sample $B/test_kernels_cuda --gtest_filter='CudaSample.*'
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
run_done
