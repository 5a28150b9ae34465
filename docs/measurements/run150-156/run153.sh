#!/usr/bin/env bash
# Run 153 (session 22): the decoder stack kernel leaves its counters 0 (the last block to
# finish resets them), so no memset node precedes it in every decode step: the stack tests,
# MoE goldens through the kernel, the engine, and the rows alternated against run 152's build.
set -u
source scripts/device/run_lib.sh
run_init run153 "${LIMIT:-560}"
B=build/r153
run_gtest t_stack $B/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
run_gtest t_moe $B/test_moe_cuda
run_gtest t_engine $B/test_engine_gpu
for r in 1 2 3; do
  run_bench r152 qwen2.5-0.5b s05_base_$r -b 1
  run_bench r153 qwen2.5-0.5b s05_new_$r -b 1
done
run_bench r152 qwen2.5-1.5b s15_base -b 1
run_bench r153 qwen2.5-1.5b s15_new -b 1
run_trace 05_new $B/tinyllm qwen2.5-0.5b
run_done
