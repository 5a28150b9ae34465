#!/usr/bin/env bash
# Run 186 (session 27): the landed code (5bdce47) through test_kernels_cuda in full and
# test_engine_gpu (HF goldens); the 0.5B rows b1 / b2 / b8 and 7B b1 on it.
set -u
source scripts/device/run_lib.sh
run_init run186 "${LIMIT:-330}"
B=build/r186
RUN_TEST_TIMEOUT=240 run_gtest t_kernels $B/test_kernels_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
for b in 1 2 8; do run_bench r186 qwen2.5-0.5b 05_b$b -b $b; done
run_bench r186 qwen2.5-7b 7b_b1 -b 1
run_done
