#!/usr/bin/env bash
# Run 212 (session 34): quantized (int8 / int4) MoE experts on CUDA (moe_quant.cu: the
# active experts' codes on the decode path, dequantize + grouped GEMM for prefill): the new
# tests, the rest of test_moe_cuda and test_quant_cuda (quant_backend.cu's params helper
# moved), then tg rows of Qwen3-30B-A3B and Qwen1.5-MoE-A2.7B quantized on load.
set -u
source scripts/device/run_lib.sh
run_init run212 "${LIMIT:-580}"
B=build/r212
RUN_TEST_TIMEOUT=150 run_gtest t_moe_quant $B/test_moe_cuda --gtest_filter='MoeCuda.Quantized*'
# (run 212a) RUN_TEST_TIMEOUT=150 run_gtest t_moe_rest $B/test_moe_cuda --gtest_filter='-MoeCuda.Quantized*'
# (run 212a) RUN_TEST_TIMEOUT=120 run_gtest t_quant $B/test_quant_cuda
RUN_BENCH_TIMEOUT=150 run_bench r212 qwen3-30b-a3b 30b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=120 run_bench r212 qwen1.5-moe-a2.7b a27b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=150 run_bench r212 qwen3-30b-a3b 30b_int8_b1 -b 1 --quantization int8
run_done
