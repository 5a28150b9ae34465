#!/usr/bin/env bash
# Run 122: attention inside every block of the decoder stack kernel for short contexts
# (build/loc; one grid barrier per layer fewer) against build/fin (HEAD 84a0b59).
set -u
source scripts/device/run_lib.sh
run_init run122 "${LIMIT:-580}"
run_gtest t_stack build/loc/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
for round in 1 2; do
  for v in fin loc; do run_bench $v qwen2.5-0.5b "s05_${v}_$round" -b 1; done
done
TLLM_STACK_LOCAL_KEYS=0 run_bench loc qwen2.5-0.5b s05_loc_grid -b 1
for v in fin loc; do run_bench $v qwen2.5-1.5b "s15_$v" -b 1; done
TLLM_STACK_TIMING=1 run_bench loc qwen2.5-0.5b s05_loc_timing -b 1 --enforce-eager -n 128 -r 3
TLLM_STACK_TIMING=1 run_bench fin qwen2.5-0.5b s05_fin_timing -b 1 --enforce-eager -n 128 -r 3
for v in fin loc; do RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b "s30_$v" -b 1; done
run_gtest t_engine build/loc/test_engine_gpu
run_done
