#!/usr/bin/env bash
# Run 257 (session 47): the traced int4 build of the quantized stack kernel (TLLM_STACK_TRACE:
# every block's events in two layers) at Qwen3-30B-A3B int4 g128, eager, summarised by
# scripts/device/stack_trace.py.
set -u
source scripts/device/run_lib.sh
run_init run257 "${LIMIT:-200}"
TLLM_STACK_TRACE=$RUN_DIR/stack_30b_int4.txt RUN_BENCH_TIMEOUT=150 run_bench r257 qwen3-30b-a3b 30b_int4_trace -b 1 \
  --enforce-eager --quantization int4 --quant-group-size 128
python3 scripts/device/stack_trace.py "$RUN_DIR/stack_30b_int4.txt" > "$RUN_DIR/stack_30b_int4.summary" 2>&1
cat "$RUN_DIR/stack_30b_int4.summary" | tail -45
run_done
