#!/usr/bin/env bash
# A/B on one q4_0 GGUF (session 60): blocks as stored (default) vs decoded + int4 g32 on load
# (session 59's default for 4-bit files), alternated.
cd /work/main
D=$(mktemp -d)
for r in 1 2 3; do
  for v in stored requant; do
    extra=""; [ $v = requant ] && extra="--quantization int4 --quant-group-size 32"
    echo "== $v round $r"
    XDG_CACHE_HOME=$D build/src/cli/tinyllm bench --model /tmp/q05-q4_0.gguf -p 128 -n 64 -r 1 $extra 2>&1 | grep -E "^\| (pp|tg)"
  done
done
