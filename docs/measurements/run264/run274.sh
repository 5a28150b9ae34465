#!/usr/bin/env bash
# Run 274 (session 51): every GPU suite in full on the landed build (e13045c): session 50
# ran test_kernels_cuda only up to CudaAttention (its 200-s limit) and never ran
# check_stack's on-demand dequantization (e13045c) on a GPU.
set -u
source scripts/device/run_lib.sh
run_init run274 "${LIMIT:-560}"
N=build/r274
RUN_TEST_TIMEOUT=330 run_gtest t_kernels $N/test_kernels_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_moe $N/test_moe_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_engine $N/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -30
run_done
