#!/usr/bin/env bash
# Run 177 (session 26): at 2..8 tokens the q|k|v GEMV with the rotation epilogue releases the
# attention at its entry for every head width; run 172 found the early release costly at
# head_dim 128 above 8 tokens. Same binary, TLLM_ROPE_EARLY_MAX_T=8 (as landed) against 1 (late
# release at 2..8 tokens too for 128-wide heads), 1.5B / 7B b2 / b4 / b8, two rounds.
set -u
source scripts/device/run_lib.sh
run_init run177 "${LIMIT:-400}"
for r in 1 2; do
  for m in qwen2.5-1.5b qwen2.5-7b; do
    for b in 2 4 8; do
      for k in 8 1; do TLLM_ROPE_EARLY_MAX_T=$k run_bench r177 $m ${m}_b${b}_e${k}_$r -b $b; done
    done
  done
done
run_done
