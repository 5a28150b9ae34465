#!/usr/bin/env bash
# Run 156 (session 22): K slices for the quantized decode GEMV's unevenly filled one-panel-per-
# block grids (7B down: 224 panels on 132 SMs): the quantized suite, the engine, the per-linear
# and per-step micro-benchmark, and the 7B int4 / int8 rows alternated against run 154's build.
set -u
source scripts/device/run_lib.sh
run_init run156 "${LIMIT:-420}"
B=build/r156
run_gtest t_quant $B/test_quant_cuda
run_gtest t_engine $B/test_engine_gpu
timeout 90 $B/bench_quant_cuda --quick > "$RUN_DIR/bq.log" 2>&1
run_log "bq rc=$? $(grep -E 'down|decode_step' "$RUN_DIR/bq.log" | awk '{print $1, $2, $(NF-7)}' | paste -sd' ')"
for r in 1 2; do
  run_bench r154 qwen2.5-7b s7_int4_base_$r -b 1 --quantization int4 --quant-group-size 128
  run_bench r156 qwen2.5-7b s7_int4_new_$r -b 1 --quantization int4 --quant-group-size 128
done
run_bench r154 qwen2.5-7b s7_int8_base -b 1 --quantization int8
run_bench r156 qwen2.5-7b s7_int8_new -b 1 --quantization int8
run_done
