#!/usr/bin/env bash
# For session 16's lead 1 (docs/cuda-notes.md, "Session 16", "Next"): the decode attention's
# own chain. Expects three builds packed beside build/pack/lib:
#   build/main   - main (the landed state)
#   build/timing - branch attn-timing (TLLM_ATTN_TIMING=1 logs the attention's phase medians)
#   build/bn128  - branch attn-bn128 (128-key decode tiles)
# each with tinyllm and test_kernels_cuda. Usage (device tool): bash scripts/device/attention_ab.sh
set -u
source scripts/device/run_lib.sh
run_init attention_ab "${LIMIT:-560}"
for v in timing bn128; do
  run_gtest "t_attn_$v" "build/$v/test_kernels_cuda" --gtest_filter='CudaAttention*:CudaLinear.LinearRope*'
done
# Where the attention's ~5.5 us per 7B layer go (graphs on; the ring holds the last 8,192 calls).
TLLM_ATTN_TIMING=1 run_bench timing qwen2.5-7b timing_7b_b1 -b 1
TLLM_ATTN_TIMING=1 run_bench timing qwen2.5-0.5b timing_05b_b8 -b 8
grep -h "decode attention (split keys)" "$RUN_DIR"/timing_*.log | cut -c1-400
# The stamps' own cost, then 128-key tiles, against main, alternated.
for round in 1 2; do
  for v in main timing bn128; do
    run_bench "$v" qwen2.5-7b "s7_${v}_$round" -b 1
  done
done
for v in main bn128; do
  run_bench "$v" qwen2.5-7b "s7b8_$v" -b 8
  run_bench "$v" qwen2.5-0.5b "s05b8_$v" -b 8
  run_bench "$v" qwen2.5-7b "s7d39_$v" -b 1 -d 3900 -n 64
done
run_done
