#!/usr/bin/env bash
# Run 123: the in-block attention with its launch constants (cos / sin, block table) in
# shared memory, the heads loaded in one round and the layer's K / V requested into L2 in
# the q|k|v phase (build/loc2), against build/fin (HEAD 84a0b59).
set -u
source scripts/device/run_lib.sh
run_init run123 "${LIMIT:-400}"
run_gtest t_stack build/loc2/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
for round in 1 2; do
  for v in fin loc2; do run_bench $v qwen2.5-0.5b "s05_${v}_$round" -b 1; done
done
TLLM_STACK_LOCAL_KEYS=0 run_bench loc2 qwen2.5-0.5b s05_loc2_grid -b 1
TLLM_STACK_LOCAL_KEYS=64 run_bench loc2 qwen2.5-0.5b s05_loc2_64 -b 1
for v in fin loc2; do run_bench $v qwen2.5-1.5b "s15_$v" -b 1; done
TLLM_STACK_TIMING=1 run_bench loc2 qwen2.5-0.5b s05_loc2_timing -b 1 --enforce-eager
TLLM_STACK_TIMING=1 run_bench fin qwen2.5-0.5b s05_fin_timing -b 1 --enforce-eager
run_done
