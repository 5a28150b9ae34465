#!/usr/bin/env bash
# Run 301 (session 58, H100) -- NOT RUN: the session's device time ran out (a refused start,
# then too little left to start one). It is the validation the next session should run
# before TLLM_GEMM_NO_WORKSPACE_MIN_T gets a default (pack tinyllm, test_kernels_cuda and
# test_engine_gpu as build/r301): cuBLASLt algorithms without a workspace from 1,024 tokens
# (=1024) against the 32 MB workspace for all (=0, the default), same binary, alternated:
# 7B pp4096 x2, 7B pp4096 in 1,024-token chunks, 1.5B, Qwen3-8B and Llama-3.1-8B pp4096
# (add pp16384 and a MoE model given the time). Tests: CudaLinear's cuBLASLt and autotuner
# cases (now at 1,024 / 1,100 tokens too) and test_engine_gpu.
set -u
tar -xJf build/r301.tar.xz
source scripts/device/run_lib.sh
run_init run301 "${LIMIT:-170}"
B=build/r301
OFF=0
TLLM_GEMM_NO_WORKSPACE_MIN_T=1024 RUN_TEST_TIMEOUT=60 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.CublasMatchesReference:CudaLinear.AutotunedGemmMatchesReferenceAndRepeats'
TLLM_GEMM_NO_WORKSPACE_MIN_T=1024 RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  for m in 1024 $OFF; do
    TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill 7b_pp4096_m${m}_$r $B/tinyllm qwen2.5-7b 4096
  done
done
for m in 1024 $OFF; do
  TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill 7b_pp4096_c1024_m$m $B/tinyllm qwen2.5-7b 4096 --max-num-batched-tokens 1024
  TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=30 run_prefill 15b_pp4096_m$m $B/tinyllm qwen2.5-1.5b 4096
  TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill q3_8b_pp4096_m$m $B/tinyllm qwen3-8b 4096
  TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill l8b_pp4096_m$m $B/tinyllm llama-3.1-8b 4096
done
run_done
