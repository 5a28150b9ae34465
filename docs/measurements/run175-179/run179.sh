#!/usr/bin/env bash
# Run 179 (session 26): the session's landed code (3d121d1's kernels) through every gpu suite,
# and the batch-1 rows (unchanged kernels at T = 1).
set -u
source scripts/device/run_lib.sh
run_init run179 "${LIMIT:-420}"
B=build/r179
RUN_TEST_TIMEOUT=260 run_gtest t_kernels $B/test_kernels_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
run_bench r179 qwen2.5-7b 7b_b1 -b 1
run_bench r179 qwen2.5-0.5b 05_b1 -b 1
run_done
