#!/usr/bin/env bash
# Run 146 (session 21): attention_o staging Wo after the wait (run 145: the bulk copies
# before it made every load of the step queue behind them; 7B 250 -> 213-243). Stage 1:
# cp.async of the slice right after the wait; stage 2: after the attention.
set -u
source scripts/device/run_lib.sh
run_init run146 "${LIMIT:-420}"
B=build/s21e
run_gtest t_attn_o $B/test_kernels_cuda --gtest_filter='CudaAttentionO*'
v() { local label=$1; shift; env "$@" $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy \
  --device cuda --max-model-len 4096 -p 16 -n 128 -r 3 -b 1 > "$RUN_DIR/$label.log" 2>&1
  run_log "$label rc=$? $(grep -E '^\| tg' "$RUN_DIR/$label.log" | cut -c1-70 | paste -sd' ')"
  grep -A9 "attention_o trace" "$RUN_DIR/$label.log" | grep -v "^\[tinyllm\|^model\|^limits\|^$\|^|" | tee -a "$RUN_DIR/progress.txt"; }
v off TLLM_FUSED_ATTN_O=0
v b1s1 TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_STAGE=1 TLLM_ATTN_O_SMEM_KB=216
v b1s2 TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_STAGE=2 TLLM_ATTN_O_SMEM_KB=216
v b2s2 TLLM_ATTN_O_BPS=2 TLLM_ATTN_O_STAGE=2
v b3s2 TLLM_ATTN_O_BPS=3 TLLM_ATTN_O_STAGE=2
v b1s2r2 TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_STAGE=2 TLLM_ATTN_O_SMEM_KB=216 TLLM_ATTN_O_RELEASE=2
v off2 TLLM_FUSED_ATTN_O=0
v b1s2t TLLM_ATTN_O_BPS=1 TLLM_ATTN_O_STAGE=2 TLLM_ATTN_O_SMEM_KB=216 TLLM_ATTN_O_TRACE=1
v b2s2t TLLM_ATTN_O_BPS=2 TLLM_ATTN_O_STAGE=2 TLLM_ATTN_O_TRACE=1
run_done
