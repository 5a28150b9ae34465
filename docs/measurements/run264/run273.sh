#!/usr/bin/env bash
# Run 273 (session 51): run 272's 30B-A3B rows, which timed out at 60 s (a 30B load with
# quantization on load takes ~45 s). route_token in registers (r272) against run 267's build,
# alternated: int8 twice, int4 g128 once.
set -u
source scripts/device/run_lib.sh
run_init run273 "${LIMIT:-420}"
for r in 1 2; do
  for v in r272 r267; do
    RUN_BENCH_TIMEOUT=100 run_bench $v qwen3-30b-a3b 30b_int8_${v}_$r -b 1 --quantization int8
  done
done
for v in r272 r267; do
  RUN_BENCH_TIMEOUT=100 run_bench $v qwen3-30b-a3b 30b_int4_$v -b 1 --quantization int4 --quant-group-size 128
done
run_done
