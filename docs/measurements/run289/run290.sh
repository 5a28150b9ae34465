#!/usr/bin/env bash
# Run 290 (session 57): run 289's binary; the L2 hint issued before the o projection's
# griddepcontrol.wait (TLLM_L2_AHEAD_EARLY=1: while the attention runs, DRAM idle) at
# 16 / 24 / 32 / 48 MB against none, two rounds alternated; int8 at 0 / 16 early.
set -u
tar -xJf build/r289.tar.xz
source scripts/device/run_lib.sh
run_init run290 "${LIMIT:-330}"
for r in 1 2; do
  for mb in 0 16 24 32 48; do
    TLLM_L2_AHEAD_MB=$mb TLLM_L2_AHEAD_EARLY=1 RUN_BENCH_TIMEOUT=60 run_bench r289 qwen2.5-7b 7b_int4_l2e_${mb}_$r -b 1 --quantization int4 --quant-group-size 128
  done
done
for mb in 0 16; do
  TLLM_L2_AHEAD_MB=$mb TLLM_L2_AHEAD_EARLY=1 RUN_BENCH_TIMEOUT=70 run_bench r289 qwen2.5-7b 7b_int8_l2e_${mb} -b 1 --quantization int8
done
run_done
