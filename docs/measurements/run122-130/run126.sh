#!/usr/bin/env bash
# Run 126: a head per block with the o projection split by head and summed in fixed point
# (build/hb1: one grid barrier per layer fewer at short contexts) against build/fin.
set -u
source scripts/device/run_lib.sh
run_init run126 "${LIMIT:-400}"
run_gtest t_stack build/hb1/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
for round in 1 2; do
  for v in fin hb1; do run_bench $v qwen2.5-0.5b "s05_${v}_$round" -b 1; done
done
TLLM_STACK_LOCAL_KEYS=0 run_bench hb1 qwen2.5-0.5b s05_hb1_grid -b 1
for v in fin hb1; do run_bench $v qwen2.5-1.5b "s15_$v" -b 1; done
TLLM_STACK_TIMING=1 run_bench hb1 qwen2.5-0.5b s05_hb1_timing -b 1 --enforce-eager
TLLM_STACK_TRACE=$RUN_DIR/stack_hb1.txt run_bench hb1 qwen2.5-0.5b s05_hb1_trace -b 1 --enforce-eager
for v in fin hb1; do RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b "s30_$v" -b 1; done
run_gtest t_engine build/hb1/test_engine_gpu
run_done
