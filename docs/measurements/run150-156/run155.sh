#!/usr/bin/env bash
# Run 155 (session 22): the session's final code (run 154's build, r154) against its start
# (e5640cb, fin21b) on the rows not yet measured this session: Qwen3-30B-A3B b1 (MoE layers
# in the stack kernel), 7B int8 b1, Qwen3-8B b1.
set -u
source scripts/device/run_lib.sh
run_init run155 "${LIMIT:-560}"
for v in fin21b r154; do RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b "s30_$v" -b 1; done
for v in fin21b r154; do run_bench $v qwen2.5-7b "s7_int8_$v" -b 1 --quantization int8; done
for v in fin21b r154; do run_bench $v qwen3-8b "s8_$v" -b 1; done
run_done
