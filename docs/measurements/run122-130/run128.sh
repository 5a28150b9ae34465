#!/usr/bin/env bash
# Run 128: a head's attention splits on one block, merged in shared memory (build/bm) when
# there are at most kAttnWarps of them, against build/cst (HEAD bbf37bd).
set -u
source scripts/device/run_lib.sh
run_init run128 "${LIMIT:-450}"
run_gtest t_stack build/bm/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
for round in 1 2 3; do
  for v in cst bm; do run_bench $v qwen2.5-0.5b "s05_${v}_$round" -b 1; done
done
for v in cst bm; do run_bench $v qwen2.5-1.5b "s15_$v" -b 1; done
for v in cst bm; do run_bench $v qwen2.5-0.5b "s05d_$v" -b 1 -d 2000 -n 64; done
TLLM_STACK_TIMING=1 run_bench bm qwen2.5-0.5b s05_bm_timing -b 1 --enforce-eager
for v in cst bm; do RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b "s30_$v" -b 1; done
run_gtest t_moe build/bm/test_moe_cuda
run_gtest t_engine build/bm/test_engine_gpu
run_done
