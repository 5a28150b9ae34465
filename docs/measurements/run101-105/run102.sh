#!/usr/bin/env bash
# Run 102: async scheduling's CUDA tests after the block-16 fixes, timelines with copies
# (kernel_trace.cpp now records memcpy / memset) of the default 0.5B path (decoder stack
# kernel) and 7B with async scheduling off / on, then async_check part 2 (quantized,
# batch 8, MoE rows).  BIN=build/asy; build/pack/lib as for async_check.sh.
set -u
source scripts/device/run_lib.sh
run_init run102 "${LIMIT:-580}"
B=${BIN:-build/asy}
V=$(basename "$B")
run_gtest t_async "$B/test_engine_gpu" --gtest_filter='AsyncScheduling*'
for m in off on; do
  run_trace "05_$m" "$B/tinyllm" qwen2.5-0.5b --async-scheduling "$m"
  run_trace "7b_$m" "$B/tinyllm" qwen2.5-7b --async-scheduling "$m"
done
run_trace "15_on" "$B/tinyllm" qwen2.5-1.5b --async-scheduling on
for m in off on; do
  run_bench "$V" qwen2.5-1.5b "s15_$m" -b 1 --async-scheduling "$m"
done
for e in 0 1; do
  TLLM_ATTN_RELEASE_EARLY=$e run_bench "$V" qwen2.5-7b "s7_int4_early$e" -b 1 --quantization int4 --quant-group-size 128
  TLLM_ATTN_RELEASE_EARLY=$e run_bench "$V" qwen2.5-7b "s7_int8_early$e" -b 1 --quantization int8
done
for m in off on; do
  run_bench "$V" qwen2.5-7b "s7_int4_$m" -b 1 --quantization int4 --quant-group-size 128 --async-scheduling "$m"
  run_bench "$V" qwen2.5-7b "s7_b8_$m" -b 8 --async-scheduling "$m"
  run_bench "$V" qwen3-30b-a3b "moe_$m" -b 1 --async-scheduling "$m"
done
run_done
