#!/usr/bin/env bash
# Run 214 (session 34): the quantized MoE decode kernels with 1-8 warps per panel, scales
# staged in shared memory, x a tile ahead (run 213: 24 + 18 us per 30B-A3B layer): the MoE
# quantized tests, tg rows of Qwen3-30B-A3B / Qwen1.5-MoE-A2.7B quantized on load, and the kernel
# timeline of a 30B-A3B int4 decode step.
set -u
source scripts/device/run_lib.sh
run_init run214 "${LIMIT:-580}"
B=build/r214
RUN_TEST_TIMEOUT=150 run_gtest t_moe $B/test_moe_cuda --gtest_filter="*Quantized*"
RUN_BENCH_TIMEOUT=150 run_bench r214 qwen3-30b-a3b 30b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=150 run_trace 30b_int4 $B/tinyllm qwen3-30b-a3b --quantization int4 --quant-group-size 128
python3 scripts/dev/kernel_trace.py "$RUN_DIR/trace_30b_int4.csv" > "$RUN_DIR/trace_30b_int4.summary" 2>&1
rm -f "$RUN_DIR/trace_30b_int4.csv"
run_log "trace summary: $(head -c 600 "$RUN_DIR/trace_30b_int4.summary")"
RUN_BENCH_TIMEOUT=120 run_bench r214 qwen1.5-moe-a2.7b a27b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=150 run_bench r214 qwen3-30b-a3b 30b_int8_b1 -b 1 --quantization int8
run_done
