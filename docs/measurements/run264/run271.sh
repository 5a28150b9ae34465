#!/usr/bin/env bash
# Run 271 (session 50): route_token split (traced_route_token.diff: run 270's traced build plus
# events after the logits' load, after the softmax and after the ranking), Qwen3-30B-A3B int8.
set -u
source scripts/device/run_lib.sh
run_init run271 "${LIMIT:-200}"
TLLM_STACK_TRACE=$RUN_DIR/stack_30b_int8.txt RUN_BENCH_TIMEOUT=110 run_bench r271t qwen3-30b-a3b 30b_int8_trace -b 1 \
  --enforce-eager --quantization int8 -n 16
python3 scripts/device/stack_trace.py "$RUN_DIR/stack_30b_int8.txt" > "$RUN_DIR/stack_30b_int8.summary" 2>&1
rm -f "$RUN_DIR/stack_30b_int8.txt"
sed -n 1,45p "$RUN_DIR/stack_30b_int8.summary"
run_done
