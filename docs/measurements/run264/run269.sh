#!/usr/bin/env bash
# Run 269 (session 50): where a Qwen3-30B-A3B int8 stack step goes, beside int4 (the built-in
# trace, TLLM_STACK_TRACE, eager steps), now that int8 MoE stacks run by default.
set -u
source scripts/device/run_lib.sh
run_init run269 "${LIMIT:-300}"
for q in int8 int4; do
  extra=""; [ $q = int4 ] && extra="--quant-group-size 128"
  TLLM_STACK_TRACE=$RUN_DIR/stack_30b_$q.txt RUN_BENCH_TIMEOUT=110 run_bench r269 qwen3-30b-a3b 30b_${q}_trace -b 1 \
    --enforce-eager --quantization $q $extra -n 16
  python3 scripts/device/stack_trace.py "$RUN_DIR/stack_30b_$q.txt" > "$RUN_DIR/stack_30b_$q.summary" 2>&1
  rm -f "$RUN_DIR/stack_30b_$q.txt"
  sed -n 1,60p "$RUN_DIR/stack_30b_$q.summary"
done
run_done
