#!/usr/bin/env bash
# Run 159 (session 23): run 158's L2 prefetch of Wo with the chunks spread over one block
# per SM (run 158: 13 blocks took 13.5 us for 25.7 MB, longer than the attention).
set -u
source scripts/device/run_lib.sh
run_init run159 "${LIMIT:-560}"
B=build/r159
for r in 1 2 3; do
  for m in 0 1; do TLLM_L2_PREFETCH=$m run_bench r159 qwen2.5-7b s7_m${m}_$r -b 1; done
done
TLLM_L2_PREFETCH=1 run_trace 7b_m1 $B/tinyllm qwen2.5-7b
for r in 1 2; do
  for m in 0 1; do TLLM_L2_PREFETCH=$m run_bench r159 qwen3-8b s8_m${m}_$r -b 1; done
done
for m in 0 1; do TLLM_L2_PREFETCH=$m run_bench r159 qwen2.5-7b s7b8_m$m -b 8; done
for m in 0 1; do TLLM_L2_PREFETCH=$m run_bench r159 qwen2.5-7b s7q4_m$m -b 1 --quantization int4 --quant-group-size 128; done
for m in 0 1; do TLLM_L2_PREFETCH=$m run_bench r159 qwen2.5-7b s7d_m$m -b 1 -d 4096; done
run_done
