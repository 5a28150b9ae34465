#!/usr/bin/env bash
# Run 163 (session 24): where a batched decode step goes. Kernel timelines of the landed build
# (run 157's binary = 3b0f28a) at batch 8 / 16 / 32 for the 7B and 0.5B shapes, and the rows.
set -u
source scripts/device/run_lib.sh
run_init run163 "${LIMIT:-560}"
B=build/r157
for b in 8 16 32; do
  run_trace 7b_b$b $B/tinyllm qwen2.5-7b -b $b
  run_trace 05_b$b $B/tinyllm qwen2.5-0.5b -b $b
done
for b in 16 32; do
  run_bench r157 qwen2.5-7b s7_b$b -b $b
  run_bench r157 qwen2.5-0.5b s05_b$b -b $b
done
run_bench r157 qwen2.5-1.5b s15_b32 -b 32
run_done
