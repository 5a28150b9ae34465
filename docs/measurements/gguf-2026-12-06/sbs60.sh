#!/usr/bin/env bash
# Side by side on one GGUF file, blocks run as stored (session 60).
cd /work/main
D=$(mktemp -d)
for f in q4_0 q8_0; do
  for r in 1 2 3; do
    echo "== $f round $r"
    XDG_CACHE_HOME=$D build/src/cli/tinyllm bench --model /tmp/q05-$f.gguf -p 128 -n 64 -r 1 2>&1 | grep -E "^\| (pp|tg)|weights:|model:"
    node ../shared/peers/cpu/llamacpp_bench.mjs /tmp/q05-$f.gguf --threads 2 --prompt 128 --gen 64 2>&1 | tail -1
  done
done
