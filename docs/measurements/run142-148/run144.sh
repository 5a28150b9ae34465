#!/usr/bin/env bash
# Run 144 (session 21): where attention_o's time goes. TLLM_ATTN_O_TRACE=1 stamps each
# block's progress in the last call (the last layer of the last step) and logs per point the
# median / latest block after the first block passed its wait.
set -u
source scripts/device/run_lib.sh
run_init run144 "${LIMIT:-300}"
v() { local label=$1; shift; env TLLM_ATTN_O_TRACE=1 "$@" build/s21c/tinyllm bench --model bench/configs/qwen2.5-7b \
  --load-format dummy --device cuda --max-model-len 4096 -p 16 -n 128 -r 1 -b 1 > "$RUN_DIR/$label.log" 2>&1
  run_log "$label rc=$? $(grep -E '^\| tg' "$RUN_DIR/$label.log" | cut -c1-70 | paste -sd' ')"
  grep -A9 "attention_o trace" "$RUN_DIR/$label.log" | tee -a "$RUN_DIR/progress.txt"; }
v b1r0 TLLM_ATTN_O_BPS=1
v b2r0 TLLM_ATTN_O_BPS=2
v b1s0 TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_SMEM_KB=0
v b3r0 TLLM_ATTN_O_BPS=3
run_done
