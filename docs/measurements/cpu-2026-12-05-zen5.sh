#!/usr/bin/env bash
# Session 56 (2026-12-05): the same VM kind as session 28 (2 vCPU AMD EPYC family 26, Zen 5), today's build.
# ours bf16 / llama f16 / ours int8 / llama Q8_0 / ours int4 g32 / llama Q4_0, alternated.
# Checkpoint: /usr/bin/python3 scripts/make_random_checkpoint.py qwen2.5-0.5b /tmp/q05 (+ the
# Qwen tokenizer files), GGUFs by ../shared/peers/cpu/hf_to_gguf.py.
cd /work/main
T=build/src/cli/tinyllm
L() { node ../shared/peers/cpu/llamacpp_bench.mjs "$1" --threads 2 --prompt 128 --gen 64 2>/dev/null | tail -1; }
for r in 1 2 3 4 5; do
  $T bench --model /tmp/q05 -p 128 -n 64 -r 1 2>&1 | grep -E "^\| (pp|tg)" | sed "s/^/r$r ours_bf16 /"
  L /tmp/q05-f16.gguf | sed "s/^/r$r llama_f16 /"
  $T bench --model /tmp/q05 --quantization int8 -p 128 -n 64 -r 1 2>&1 | grep -E "^\| (pp|tg)" | sed "s/^/r$r ours_int8 /"
  L /tmp/q05-q8_0.gguf | sed "s/^/r$r llama_q8 /"
  $T bench --model /tmp/q05 --quantization int4 --quant-group-size 32 -p 128 -n 64 -r 1 2>&1 | grep -E "^\| (pp|tg)" | sed "s/^/r$r ours_int4 /"
  L /tmp/q05-q4_0.gguf | sed "s/^/r$r llama_q4 /"
done
