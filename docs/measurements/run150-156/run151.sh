#!/usr/bin/env bash
# Run 151 (session 22): 4-warp blocks for the vocabulary-sized GEMV grids at any K
# (gemv.cu four_warps; host code only, every kernel's machine code identical): CudaLinear,
# and the b1 rows alternated against the previous build (fin21b = e5640cb).
set -u
source scripts/device/run_lib.sh
run_init run151 "${LIMIT:-400}"
B=build/r151
run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.*'
for r in 1 2 3; do
  run_bench fin21b qwen2.5-0.5b s05_base_$r -b 1
  run_bench r151 qwen2.5-0.5b s05_new_$r -b 1
done
for r in 1 2; do
  run_bench fin21b qwen2.5-1.5b s15_base_$r -b 1
  run_bench r151 qwen2.5-1.5b s15_new_$r -b 1
done
run_bench fin21b qwen2.5-0.5b s05b8_base -b 8
run_bench r151 qwen2.5-0.5b s05b8_new -b 8
run_bench fin21b qwen2.5-1.5b s15b8_base -b 8
run_bench r151 qwen2.5-1.5b s15b8_new -b 8
run_trace 05_new $B/tinyllm qwen2.5-0.5b
run_done
