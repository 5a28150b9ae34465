#!/usr/bin/env bash
# Run 209 (session 33): run 208's 96-token runs found no drafts (the random model's output had
# not looped yet). 7B n-gram K = 2 at 256 and 768 tokens, with graphs and --enforce-eager, and
# plain; a kernel timeline of K = 2 at 256 tokens.
set -u
source scripts/device/run_lib.sh
run_init run209 "${LIMIT:-300}"
B=build/r206/tinyllm
ids=$(seq -s, 100 163)
spec=(--speculative-config '{"method": "ngram", "num_speculative_tokens": 2}')
one() {
  local n=$1 label=$2
  shift 2
  timeout 100 $B generate --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --prompt-ids "$ids" \
    --max-tokens "$n" --ignore-eos --temperature 0 "$@" > "$RUN_DIR/$label.log" 2>&1
  run_log "$label rc=$? $(grep -E 'tokens in|drafts accepted' "$RUN_DIR/$label.log" | cut -c1-160 | paste -sd' ')"
}
one 768 plain_768
one 768 k2_768 "${spec[@]}"
one 768 k2_768_eager "${spec[@]}" --enforce-eager
one 768 plain_768_eager --enforce-eager
one 256 k2_256 "${spec[@]}"
CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$RUN_DIR/trace_k2_256.csv \
  one 256 trace_k2_256 "${spec[@]}"
run_done
