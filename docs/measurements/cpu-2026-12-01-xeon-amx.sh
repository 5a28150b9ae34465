#!/usr/bin/env bash
# ours int8 / llama Q8_0 / ours int4 g32 / llama Q4_0, alternated, 5 rounds
cd /work/main
T=build/gpu/src/cli/tinyllm
for r in 1 2 3 4 5 6; do
  $T bench --model /tmp/q05 --quantization int8 -p 128 -n 64 -r 1 2>&1 | grep -E "^\| (pp|tg)" | sed "s/^/r$r ours_int8 /"
  node ../shared/peers/cpu/llamacpp_bench.mjs /tmp/q05-q8_0.gguf --threads 2 --prompt 128 --gen 64 2>/dev/null | tail -1 | sed "s/^/r$r llama_q8 /"
  $T bench --model /tmp/q05 --quantization int4 --quant-group-size 32 -p 128 -n 64 -r 1 2>&1 | grep -E "^\| (pp|tg)" | sed "s/^/r$r ours_int4 /"
  node ../shared/peers/cpu/llamacpp_bench.mjs /tmp/q05-q4_0.gguf --threads 2 --prompt 128 --gen 64 2>/dev/null | tail -1 | sed "s/^/r$r llama_q4 /"
done
