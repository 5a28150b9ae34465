#!/usr/bin/env bash
# Run 233 (session 40, H200): after the review's mend (one launch configuration for the
# cluster query and the launch): the GEMM test in both forms, the prefill attention, the
# engine's HF goldens with the fused path from T = 1.
set -u
source scripts/device/run_lib.sh
run_init run233 "${LIMIT:-240}"
B=build/r233
RUN_TEST_TIMEOUT=120 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.GemmSilu*:CudaAttention.Prefill*:CudaAttention.WgmmaPrefill*'
TLLM_GEMM_SILU_CLUSTER=2 RUN_TEST_TIMEOUT=60 run_gtest t_gemm_silu_cl2 $B/test_kernels_cuda --gtest_filter='CudaLinear.GemmSilu*'
TLLM_GEMM_SILU=1 TLLM_GEMM_SILU_MIN_T=1 RUN_TEST_TIMEOUT=100 run_gtest t_engine_gpu_fused_all $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
run_done
