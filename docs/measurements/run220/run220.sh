#!/usr/bin/env bash
# Run 220 (session 36): the quantized MoE decode kernels as a PDL chain (gate|up waits for the
# grouping and releases down at once; down puts its codes and scales in flight before it waits
# for act; moe_combine launched with PDL): test_moe_cuda, then Qwen3-30B-A3B int4 g128 tg b1
# alternated against run 219's binary (the code before), int8 once each, and the new build's
# kernel timeline. Not kept: 30B-A3B int4 308.4 -> 295.4 tok/s (-4%); the build's patch is
# moe_quant_pdl.diff beside this script.
set -u
source scripts/device/run_lib.sh
run_init run220 "${LIMIT:-580}"
B=build/r220
RUN_TEST_TIMEOUT=150 run_gtest t_moe $B/test_moe_cuda
grep -E "FAILED|Failure" -A5 "$RUN_DIR/t_moe.log" | head -30
for round in 1 2; do
  for v in r219 r220; do
    RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b 30b_int4_${v}_$round -b 1 --quantization int4 --quant-group-size 128
  done
done
for v in r219 r220; do
  RUN_BENCH_TIMEOUT=150 run_bench $v qwen1.5-moe-a2.7b a27b_int4_$v -b 1 --quantization int4 --quant-group-size 128
done
RUN_BENCH_TIMEOUT=150 run_trace 30b_int4 $B/tinyllm qwen3-30b-a3b --quantization int4 --quant-group-size 128
python3 scripts/dev/kernel_trace.py "$RUN_DIR/trace_30b_int4.csv" > "$RUN_DIR/trace_30b_int4.summary" 2>&1
rm -f "$RUN_DIR/trace_30b_int4.csv"
head -30 "$RUN_DIR/trace_30b_int4.summary"
run_done
