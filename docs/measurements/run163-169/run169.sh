#!/usr/bin/env bash
# Run 169 (session 24): the session's final build: every kernel test, the engine's, and the
# CudaLinear cases that failed once in run 165 again.
set -u
source scripts/device/run_lib.sh
run_init run169 "${LIMIT:-400}"
B=build/r169
RUN_TEST_TIMEOUT=220 run_gtest t_kern $B/test_kernels_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=80 run_gtest t_lin $B/test_kernels_cuda --gtest_filter='CudaLinear.SkinnyGemm*:CudaLinear.AutoRoutes*'
run_bench r169 qwen2.5-0.5b 05_b16 -b 16
run_done
