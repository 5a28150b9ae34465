#!/usr/bin/env bash
# Run 124: where the in-block attention's time goes: the traced build (TLLM_STACK_TRACE) of
# build/loc3 (events after the heads, after the key tiles, after the merge) and of build/fin.
set -u
source scripts/device/run_lib.sh
run_init run124 "${LIMIT:-200}"
for v in loc3 fin; do
  TLLM_STACK_TRACE=$RUN_DIR/stack_$v.txt timeout 90 build/$v/tinyllm bench --model bench/configs/qwen2.5-0.5b \
    --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 128 -r 1 --enforce-eager > "$RUN_DIR/trace_$v.log" 2>&1
  run_log "trace $v rc=$? $(wc -l < $RUN_DIR/stack_$v.txt)"
done
run_done
