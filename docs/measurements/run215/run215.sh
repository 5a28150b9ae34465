#!/usr/bin/env bash
# Run 215 (session 34): the quantized MoE kernels with their scales requested beside the codes
# and one wave of blocks (run 214: 20 + 12 us per 30B-A3B layer): the whole MoE
# suite, tg rows of Qwen3-30B-A3B / Qwen1.5-MoE-A2.7B quantized on load, and the kernel
# timeline of a 30B-A3B int4 decode step.
set -u
source scripts/device/run_lib.sh
run_init run215 "${LIMIT:-580}"
B=build/r215
RUN_TEST_TIMEOUT=150 run_gtest t_moe $B/test_moe_cuda 
RUN_BENCH_TIMEOUT=150 run_bench r215 qwen3-30b-a3b 30b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=150 run_trace 30b_int4 $B/tinyllm qwen3-30b-a3b --quantization int4 --quant-group-size 128
python3 scripts/dev/kernel_trace.py "$RUN_DIR/trace_30b_int4.csv" > "$RUN_DIR/trace_30b_int4.summary" 2>&1
rm -f "$RUN_DIR/trace_30b_int4.csv"
run_log "trace summary: $(head -c 600 "$RUN_DIR/trace_30b_int4.summary")"
RUN_BENCH_TIMEOUT=120 run_bench r215 qwen1.5-moe-a2.7b a27b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=150 run_bench r215 qwen3-30b-a3b 30b_int8_b1 -b 1 --quantization int8
run_done
