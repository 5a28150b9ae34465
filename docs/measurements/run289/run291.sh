#!/usr/bin/env bash
# Run 291 (session 57): (1) the L2 hint landed on by default (24 MB, before the wait, only
# where the o GEMV has all its codes in flight before its wait); (2) blocks of the x-staged
# T = 1 GEMV that walk several units (7B gate|up: 396 blocks x 3 units of 2 panels instead
# of 592 blocks of 4 in 1.5 waves; the int8 lm_head: 396 x 3 units of 8). test_quant_cuda
# (WalkingBlocksGiveOneBlockPerUnitsBits and the fused-epilogue bits), test_engine_gpu, and
# 7B int4 g128 / int8 tg128 b1 with TLLM_QGEMV_WALK and TLLM_L2_AHEAD_MB each off and on,
# alternated.
set -u
tar -xJf build/r291.tar.xz
source scripts/device/run_lib.sh
run_init run291 "${LIMIT:-420}"
B=build/r291
RUN_TEST_TIMEOUT=110 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2; do
  for w in 0 1; do
    for mb in 0 24; do
      TLLM_QGEMV_WALK=$w TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=60 run_bench r291 qwen2.5-7b 7b_int4_w${w}_l${mb}_$r -b 1 --quantization int4 --quant-group-size 128
    done
  done
done
for r in 1 2; do
  for w in 0 1; do
    TLLM_QGEMV_WALK=$w RUN_BENCH_TIMEOUT=70 run_bench r291 qwen2.5-7b 7b_int8_w${w}_$r -b 1 --quantization int8
  done
done
run_done
