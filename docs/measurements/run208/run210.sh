#!/usr/bin/env bash
# Run 210 (session 33): runs 207-209 compared different outputs (the GEMM autotuner picks per
# process, so random weights' greedy text differs run to run). TLLM_GEMM_TUNE=0: the same
# algorithms, the same text, plain against n-gram K = 2 / 4, 7B shape, 512 tokens.
set -u
source scripts/device/run_lib.sh
run_init run210 "${LIMIT:-200}"
B=build/r206/tinyllm
ids=$(seq -s, 100 163)
export TLLM_GEMM_TUNE=0
for k in 0 2 4; do
  spec=()
  [ "$k" -gt 0 ] && spec=(--speculative-config "{\"method\": \"ngram\", \"num_speculative_tokens\": $k}")
  timeout 60 $B generate --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --prompt-ids "$ids" \
    --max-tokens 512 --ignore-eos --temperature 0 --json "${spec[@]}" > "$RUN_DIR/k$k.log" 2>&1
  run_log "k=$k rc=$? $(grep -E 'tokens in|drafts accepted|summary' "$RUN_DIR/k$k.log" | cut -c1-200 | paste -sd' ')"
  grep -o '"token_id":[0-9]*' "$RUN_DIR/k$k.log" | md5sum | tee -a "$RUN_DIR/progress.txt"
done
run_done
