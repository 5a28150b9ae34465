#!/usr/bin/env bash
# Run 310 (session 62): the decoder-stack kernel's grid below one block per SM
# (TLLM_STACK_BLOCKS=G, an experiment switch) at the 0.5B / 1.5B shapes, alternated, and
# the stack tests with a small grid.
set -u
tar -xJf build/r310.tar.xz
source scripts/device/run_lib.sh
run_init run310 "${LIMIT:-560}"
B=build/r310

for round in 1 2; do
  for g in 132 120 104 88 66; do
    TLLM_STACK_BLOCKS=$g RUN_BENCH_TIMEOUT=60 run_bench r310 qwen2.5-0.5b 05b_g${g}_r$round -b 1
  done
done
for g in 132 112 88; do
  TLLM_STACK_BLOCKS=$g RUN_BENCH_TIMEOUT=70 run_bench r310 qwen2.5-1.5b 15b_g${g} -b 1
done

run_done
