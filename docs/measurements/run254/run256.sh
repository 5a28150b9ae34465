#!/usr/bin/env bash
# Run 256 (session 47): the landing candidate of the quantized decoder stack (quantized dense
# stacks declined by default), its tests and the suites whose decode steps now take it
# (test_moe_cuda's quantized test model, test_engine_gpu), and 4 tiles in flight per warp in
# qgemv_tile (r256u4) against 2 (r256) at Qwen3-30B-A3B int4 g128, alternated.
set -u
source scripts/device/run_lib.sh
run_init run256 "${LIMIT:-590}"
N=build/r256
RUN_TEST_TIMEOUT=200 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
grep -hE "^\[  FAILED|Failure|Expected|ties" "$RUN_DIR"/t_stack.log | head -20
run_gtest t_moe $N/test_moe_cuda
run_gtest t_quant $N/test_quant_cuda
run_gtest t_engine $N/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A4 "$RUN_DIR"/t_moe.log "$RUN_DIR"/t_quant.log "$RUN_DIR"/t_engine.log | head -30
RUN_BENCH_TIMEOUT=150 run_bench r256 qwen3-30b-a3b 30b_int4_u2 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=150 run_bench r256u4 qwen3-30b-a3b 30b_int4_u4 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=150 run_bench r256 qwen3-30b-a3b 30b_int4g64 -b 1 --quantization int4 --quant-group-size 64
run_bench r256 qwen2.5-0.5b 05b_int4 -b 1 --quantization int4 --quant-group-size 64
grep -h "decoder stack" "$RUN_DIR"/30b_int4g64.log "$RUN_DIR"/05b_int4.log | sort | uniq -c
run_done
