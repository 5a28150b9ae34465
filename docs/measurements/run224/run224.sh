#!/usr/bin/env bash
# Run 224 (planned in session 38, not yet run): the quantized MoE decode GEMV with its scale
# groups found by a counter (quant::GroupWalk) instead of a division at every k step.
# Prediction (from run 223's ncu: ~500 -> ~315 instructions per k tile per warp, the kernel
# issue-bound): gate|up 20.4 -> ~12.5 us alone, down 13.7 -> ~8.5; 30B-A3B int4 g128 tg b1
# ~308 -> ~370 tok/s. Needs build/r224 (this session's binaries) and build/r224a (the build
# before, 21c93b2) packed as in run 221.
set -u
source scripts/device/run_lib.sh
run_init run224 "${LIMIT:-570}"
B=build/r224
RUN_TEST_TIMEOUT=150 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_quant $B/test_quant_cuda
grep -hE "FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
for round in 1 2; do
  for v in r224a r224; do
    RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b 30b_int4_${v}_$round -b 1 --quantization int4 --quant-group-size 128
  done
done
for v in r224a r224; do
  RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b 30b_int8_$v -b 1 --quantization int8
  RUN_BENCH_TIMEOUT=150 run_bench $v qwen1.5-moe-a2.7b a27b_int4_$v -b 1 --quantization int4 --quant-group-size 128
done
run_trace 30b_int4 $B/tinyllm qwen3-30b-a3b --quantization int4 --quant-group-size 128
run_done
