#!/usr/bin/env bash
# Run 158 (session 23): the o projection's weight moved into L2 by a prefetch on a parallel
# graph branch (TLLM_L2_PREFETCH=1: forked after q|k|v, beside the attention; =2: forked
# before q|k|v). Engine tests with the fork captured, then the rows alternated 0/1/2.
set -u
source scripts/device/run_lib.sh
run_init run158 "${LIMIT:-560}"
B=build/r158
TLLM_L2_PREFETCH=1 run_gtest t_engine1 $B/test_engine_gpu
TLLM_L2_PREFETCH=2 run_gtest t_engine2 $B/test_engine_gpu
for r in 1 2; do
  for m in 0 1 2; do TLLM_L2_PREFETCH=$m run_bench r158 qwen2.5-7b s7_m${m}_$r -b 1; done
done
TLLM_L2_PREFETCH=0 run_trace 7b_m0 $B/tinyllm qwen2.5-7b
TLLM_L2_PREFETCH=1 run_trace 7b_m1 $B/tinyllm qwen2.5-7b
TLLM_L2_PREFETCH=2 run_trace 7b_m2 $B/tinyllm qwen2.5-7b
for m in 0 1 2; do TLLM_L2_PREFETCH=$m run_bench r158 qwen2.5-7b s7q4_m$m -b 1 --quantization int4; done
for m in 0 1 2; do TLLM_L2_PREFETCH=$m run_bench r158 qwen3-8b s8_m$m -b 1; done
for m in 0 1 2; do TLLM_L2_PREFETCH=$m run_bench r158 qwen2.5-7b s7b8_m$m -b 8; done
run_bench r157 qwen2.5-7b s7_r157 -b 1
run_done
