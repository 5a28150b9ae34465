#!/usr/bin/env bash
# Run 196 (session 30): structured / penalised requests under async scheduling no longer resolve
# the previous step before scheduling: the next forward is queued first and the previous draw
# resolved while it runs, then the next draw is built (engine.cpp launch()). test_engine_gpu
# (async against synchronous on CUDA, JSON mode and penalties included), CudaSample.*, and batch-1
# decode tok/s of `generate` on random 0.5B / 7B weights with Qwen3's tokenizer: no format and a
# presence penalty, the session's earlier binary (r195: the step after a penalised draw resolves
# it first) against this one; and here a schema whose states repeat (cached filter) and one with
# a new state every token (a string of >= 4000 characters).
set -u
source scripts/device/run_lib.sh
run_init run196 "${LIMIT:-500}"
B=build/r196
RUN_TEST_TIMEOUT=90 run_gtest t_sample $B/test_kernels_cuda --gtest_filter='CudaSample.*'
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
CACHED='{"type":"array","items":{"enum":[1,2,3]},"minItems":1000}'
FRESH='{"type":"string","minLength":4000}'
for m in qwen2.5-0.5b qwen2.5-7b; do
  d=/tmp/m_$m
  mkdir -p $d && cp bench/configs/$m/*.json $d/ && cp build/tok/* $d/
  for round in 1 2; do
    for bin in r195 r196; do
      for f in none pen cached fresh; do
        args=(--ignore-eos)
        [[ $f == pen ]] && args=(--ignore-eos --presence-penalty 0.1)
        [[ $f == cached ]] && args=(--ignore-eos --json-schema "$CACHED")
        [[ $f == fresh ]] && args=(--ignore-eos --json-schema "$FRESH")
        [[ $bin == r195 && ( $f == cached || $f == fresh ) ]] && continue  # no --json-schema flag there
        out=$(timeout 120 build/$bin/tinyllm generate --model $d --load-format dummy --device cuda --max-model-len 4096 \
              --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 --max-tokens 256 --seed 1 --temperature 1 \
              "${args[@]}" 2>&1 | grep -E 'tokens in')
        echo "$m round $round $bin $f: $out" >> "$RUN_DIR/decode.txt"
        run_log "$m r$round $bin $f $(echo "$out" | grep -oE 'decode [0-9.]+ tok/s')"
      done
    done
  done
done
run_done
