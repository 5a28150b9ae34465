#!/usr/bin/env bash
# Run 125: the in-block attention's key-tile section taken apart (build/dbg,
# TLLM_STACK_LOCAL_DEBUG bits: 1 no cache reads (K / V of the token's own row), 2 no P.V,
# 4 no softmax); traced, 0.5B. Timing only: the results of the debug variants are wrong.
set -u
source scripts/device/run_lib.sh
run_init run125 "${LIMIT:-200}"
for d in 0 1 2 4 6 7; do
  TLLM_STACK_LOCAL_DEBUG=$d TLLM_STACK_TRACE=$RUN_DIR/stack_d$d.txt timeout 90 build/dbg/tinyllm bench --model bench/configs/qwen2.5-0.5b \
    --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 128 -r 1 --enforce-eager > "$RUN_DIR/trace_d$d.log" 2>&1
  run_log "trace d$d rc=$? $(grep -E '^\| tg' "$RUN_DIR/trace_d$d.log" | cut -c1-50)"
done
run_done
