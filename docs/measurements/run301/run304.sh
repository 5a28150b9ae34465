#!/usr/bin/env bash
# Run 304 (session 59, H100): every GPU suite with TLLM_GEMM_NO_WORKSPACE_MIN_T's new default
# (1,024), the build of the commit that sets it. Pack build/r304: test_kernels_cuda,
# test_quant_cuda, test_moe_cuda, test_engine_gpu, tinyllm. Session 60 ran it (rebuilt from
# e133769, same CUDA code) with the two short rows after the suites.
set -u
tar -xJf build/r304.tar.xz
source scripts/device/run_lib.sh
run_init run304 "${LIMIT:-560}"
B=build/r304
RUN_TEST_TIMEOUT=300 run_gtest t_kernels $B/test_kernels_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
RUN_BENCH_TIMEOUT=40 run_prefill 7b_pp4096 $B/tinyllm qwen2.5-7b 4096
RUN_BENCH_TIMEOUT=60 run_bench r304 qwen2.5-0.5b 05b_bf16 -b 1
RUN_BENCH_TIMEOUT=90 run_bench r304 qwen2.5-7b 7b_int4 -b 1 --quantization int4 --quant-group-size 128
run_done
