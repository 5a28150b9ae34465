#!/usr/bin/env bash
# Run 201 (session 31): the address-first x loads also in the batched kernels that load x at
# each group (8-warp blocks at 9..32 tokens; r201) against the landed rule (one-token kernels
# only; r200), alternated: tg128 at batch 12 / 16 / 24 / 32 on 0.5B, 1.5B and 7B.
set -u
source scripts/device/run_lib.sh
run_init run201 "${LIMIT:-280}"
for m in qwen2.5-7b qwen2.5-1.5b qwen2.5-0.5b; do
  for b in 12 16 32; do
    run_bench r200 $m ${m}_b${b}_r200 -b $b
    run_bench r201 $m ${m}_b${b}_r201 -b $b
  done
done
run_done
