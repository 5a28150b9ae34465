#!/usr/bin/env bash
# Run 129: the block merge for up to 16 splits (all warps of a block; contexts up to 512
# keys; build/bm16) against 8 (build/bm = HEAD 1cb3700's kernel).
set -u
source scripts/device/run_lib.sh
run_init run129 "${LIMIT:-400}"
run_gtest t_stack build/bm16/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
for round in 1 2; do
  for v in bm bm16; do run_bench $v qwen2.5-0.5b "s05d384_${v}_$round" -b 1 -d 384 -n 64; done
done
for v in bm bm16; do run_bench $v qwen2.5-0.5b "s05_$v" -b 1; done
for v in bm bm16; do run_bench $v qwen2.5-1.5b "s15d384_$v" -b 1 -d 384 -n 64; done
for v in bm bm16; do RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b "s30_$v" -b 1; done
run_gtest t_moe build/bm16/test_moe_cuda
run_gtest t_engine build/bm16/test_engine_gpu
run_done
