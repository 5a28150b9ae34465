#!/usr/bin/env bash
# Side by side on a Q4_K_M-like file (session 60): random Qwen2.5-0.5B-shape weights (/tmp/q05, the
# session-59 checkpoint) written by scripts/gguf/write_gguf.py --type mixed: q4_K asked, so the
# 896-wide rows fall back to q5_0 and v to q8_0 as llama.cpp's quantizer does, down in q6_K.
cd /work/main
D=$(mktemp -d)
for r in 1 2 3; do
  echo "== round $r"
  XDG_CACHE_HOME=$D build/src/cli/tinyllm bench --model /tmp/q05-mixed.gguf -p 128 -n 64 -r 1 2>&1 | grep -E "^\| (pp|tg)|weights:"
  node ../shared/peers/cpu/llamacpp_bench.mjs /tmp/q05-mixed.gguf --threads 2 --prompt 128 --gen 64 2>&1 | tail -1
done
