#!/usr/bin/env bash
# Run 292 (session 57): the landed build (the L2 hint on by default: 24 MB before the o
# GEMV's wait, where its codes are all in flight by then; walking blocks dropped):
# test_quant_cuda, test_engine_gpu, and tg128 b1 with TLLM_L2_AHEAD_MB=0 against the
# default, alternated: 7B int4 g128 (two rounds), 7B int8 (the rule leaves it off),
# 1.5B int4 g128 and 0.5B int4 g64 (op by op: dense quantized models skip the stack kernel).
set -u
tar -xJf build/r292.tar.xz
source scripts/device/run_lib.sh
run_init run292 "${LIMIT:-330}"
B=build/r292
RUN_TEST_TIMEOUT=110 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2; do
  for mb in 0 24; do
    TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=60 run_bench r292 qwen2.5-7b 7b_int4_l${mb}_$r -b 1 --quantization int4 --quant-group-size 128
  done
done
for mb in 0 24; do
  TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=70 run_bench r292 qwen2.5-7b 7b_int8_l${mb} -b 1 --quantization int8
  TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=40 run_bench r292 qwen2.5-1.5b 15b_int4_l${mb} -b 1 --quantization int4 --quant-group-size 128
  TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=40 run_bench r292 qwen2.5-0.5b 05b_int4_l${mb} -b 1 --quantization int4 --quant-group-size 64
done
run_done
