#!/usr/bin/env bash
# Run 263 (session 49): the landing candidate r263 = r262 with the shared-memory layer
# pointers kept off in the bf16 kernel of 128-wide heads (it spilled there and 30B-A3B bf16
# ran 1.2% slower in run 262); the kernel-level test prints each MoE layer's routing gap in
# bf16 steps when x disagrees. GPU suites; Qwen3-30B-A3B bf16 and Qwen2.5-0.5B bf16 against
# the landed build (r261a), alternated; Qwen3-30B-A3B int4 / int8.
set -u
source scripts/device/run_lib.sh
run_init run263 "${LIMIT:-420}"
N=build/r263
RUN_TEST_TIMEOUT=90 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
grep -hE "^\[  FAILED|Failure" -A4 "$RUN_DIR"/t_stack.log | head -30
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -hE "moe decode|Failure" -A2 "$RUN_DIR"/t_quant.log | head -20
RUN_TEST_TIMEOUT=100 run_gtest t_moe $N/test_moe_cuda
run_gtest t_engine $N/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A4 "$RUN_DIR"/t_moe.log "$RUN_DIR"/t_engine.log | head -20
for r in 1 2; do
  for v in r261a r263; do
    RUN_BENCH_TIMEOUT=100 run_bench $v qwen3-30b-a3b 30b_bf16_${v}_$r -b 1
  done
done
for v in r261a r263; do run_bench $v qwen2.5-0.5b 05b_bf16_${v} -b 1; done
RUN_BENCH_TIMEOUT=100 run_bench r263 qwen3-30b-a3b 30b_int4_r263 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=100 run_bench r263 qwen3-30b-a3b 30b_int8_r263 -b 1 --quantization int8
run_done
