#!/usr/bin/env bash
# Run 259 (session 48): the landing candidate: qgemv_tile at 1 tile in flight per warp, int8
# stacks declined by default, the new MoE test; the GPU suites and Qwen3-30B-A3B int4 / int8
# g128 tg b1.
set -u
source scripts/device/run_lib.sh
run_init run259 "${LIMIT:-400}"
N=build/r259
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -hE "moe decode|FAILED|Failure" -A3 "$RUN_DIR"/t_quant.log | head -30
RUN_TEST_TIMEOUT=100 run_gtest t_moe $N/test_moe_cuda
run_gtest t_engine $N/test_engine_gpu
RUN_TEST_TIMEOUT=60 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
grep -hE "^\[  FAILED|Failure" -A4 "$RUN_DIR"/t_moe.log "$RUN_DIR"/t_engine.log "$RUN_DIR"/t_stack.log | head -30
RUN_BENCH_TIMEOUT=100 run_bench r259 qwen3-30b-a3b 30b_int4 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=100 run_bench r259 qwen3-30b-a3b 30b_int8 -b 1 --quantization int8
grep -h "decoder stack" "$RUN_DIR"/30b_int4.log "$RUN_DIR"/30b_int8.log | sort | uniq -c
run_done
