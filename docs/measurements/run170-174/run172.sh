#!/usr/bin/env bash
# Run 172 (session 25): why the q|k|v rotation epilogue above 8 tokens wins at 0.5B (b16
# +6.8%, b32 +3%) and loses at 1.5B (b16 -2%, b32 -4%) in run 171: timelines of 1.5B b16 /
# b32 with the epilogue on and off (TLLM_FUSED_ROPE=0), and the 7B b16 row on / off.
set -u
source scripts/device/run_lib.sh
run_init run172 "${LIMIT:-300}"
B=build/r171
run_trace 15_b16_on $B/tinyllm qwen2.5-1.5b -b 16
TLLM_FUSED_ROPE=0 run_trace 15_b16_off $B/tinyllm qwen2.5-1.5b -b 16
run_trace 15_b32_on $B/tinyllm qwen2.5-1.5b -b 32
TLLM_FUSED_ROPE=0 run_trace 15_b32_off $B/tinyllm qwen2.5-1.5b -b 32
for r in 1 2; do
  run_bench r171 qwen2.5-7b 7b_b16_on_$r -b 16
  TLLM_FUSED_ROPE=0 run_bench r171 qwen2.5-7b 7b_b16_off_$r -b 16
done
run_done
