#!/usr/bin/env bash
# Side by side on one GGUF file (session 64): random Qwen2.5-0.5B-shape weights
# (scripts/make_random_checkpoint.py qwen2.5-0.5b /tmp/q05-random, with the Qwen tokenizer from
# .cache/assets copied in) written by scripts/gguf/write_gguf.py --type mixed3 (a Q3_K_M-like
# file: q3_K, v / o / down q4_K, the 896-wide rows in llama.cpp's fallbacks: iq4_nl for q3_K,
# q5_0 for q4_K) and --type iq4_xs (896-wide rows iq4_nl). 3 rounds alternated, 2 threads.
cd /work/main
D=$(mktemp -d)
for r in 1 2 3; do
  for f in mixed3 iq4_xs; do
    echo "== $f round $r"
    XDG_CACHE_HOME=$D build/src/cli/tinyllm bench --model /tmp/q05-$f.gguf -p 128 -n 64 -r 1 2>&1 | grep -E "^\| (pp|tg)|weights:|model:"
    node ../shared/peers/cpu/llamacpp_bench.mjs /tmp/q05-$f.gguf --threads 2 --prompt 128 --gen 64 2>&1 | tail -1
  done
done
