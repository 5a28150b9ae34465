#!/usr/bin/env bash
# Run 207 (session 33): what a speculative verification costs on real shapes. Random weights
# (--load-format dummy) decode greedily into loops that n-gram lookup predicts, so drafts are
# kept at high rates: a synthetic acceptance, but the verification forward of K + 1 tokens, its
# graph and the draw are the real ones. Plain against n-gram K = 2 / 4 / 7, 7B and 0.5B shapes,
# batch 1, 256 tokens. Binary: build/r206 (03dd918).
set -u
source scripts/device/run_lib.sh
run_init run207 "${LIMIT:-400}"
B=build/r206/tinyllm
ids=$(seq -s, 100 163)
for m in qwen2.5-7b qwen2.5-0.5b; do
  for k in 0 2 4 7; do
    spec=()
    [ "$k" -gt 0 ] && spec=(--speculative-config "{\"method\": \"ngram\", \"num_speculative_tokens\": $k}")
    timeout 120 $B generate --model bench/configs/$m --load-format dummy --device cuda --prompt-ids "$ids" \
      --max-tokens 256 --ignore-eos --temperature 0 "${spec[@]}" > "$RUN_DIR/${m}_k$k.log" 2>&1
    run_log "$m k=$k rc=$? $(grep -o '\[[0-9]* tokens in.*' "$RUN_DIR/${m}_k$k.log" | cut -c1-200)"
  done
done
run_done
