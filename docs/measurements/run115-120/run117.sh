#!/usr/bin/env bash
# Run 117: the landed build of run 116 (commit e52ff8a): the quantized and MoE suites, which
# run the bf16 decode GEMV in their attention projections, then rows for docs/performance.md.
set -u
source scripts/device/run_lib.sh
run_init run117 "${LIMIT:-400}"
run_gtest t_quant build/rem/test_quant_cuda
run_gtest t_moe build/rem/test_moe_cuda
run_bench rem qwen2.5-7b s7_b1 -b 1
run_bench rem qwen2.5-7b s7_b1_2 -b 1
run_bench rem qwen3-8b q3_8b -b 1
run_bench rem qwen2.5-7b s7_pp -b 1 -p 4096 -n 16 -r 2
RUN_BENCH_TIMEOUT=120 run_bench rem qwen3-30b-a3b moe_b8 -b 8
run_done
