#!/usr/bin/env bash
# Run 293 (session 57): the final build: the L2 hint only where the next GEMV's codes are at
# least twice its 24 MB budget (run 292: 1.5B and 0.5B int4 lost 2-3% with it). test_quant_cuda,
# and tg128 b1 with TLLM_L2_AHEAD_MB=0 against the default, alternated: 7B int4 g128,
# Qwen3-8B int4 g128 and Llama-3.1-8B int4 g128 (gate|up 50 / 59 MB: on), 1.5B int4 (off).
set -u
tar -xJf build/r293.tar.xz
source scripts/device/run_lib.sh
run_init run293 "${LIMIT:-330}"
B=build/r293
RUN_TEST_TIMEOUT=110 run_gtest t_quant $B/test_quant_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for m in qwen2.5-7b qwen3-8b llama-3.1-8b; do
  for mb in 0 24; do
    TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=60 run_bench r293 $m ${m}_int4_l${mb} -b 1 --quantization int4 --quant-group-size 128
  done
done
for mb in 0 24; do
  TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=40 run_bench r293 qwen2.5-1.5b 15b_int4_l${mb} -b 1 --quantization int4 --quant-group-size 128
done
run_done
