#!/usr/bin/env bash
# Run 127: the decoder stack kernel with the launch's cos / sin row and block-table prefix in
# shared memory for the attention units (build/cst), and cst + the layer's earlier K / V
# rows requested into L2 in the q|k|v phase (build/cstp), against build/fin (84a0b59).
set -u
source scripts/device/run_lib.sh
run_init run127 "${LIMIT:-500}"
run_gtest t_stack build/cst/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
for round in 1 2 3; do
  for v in fin cst cstp; do run_bench $v qwen2.5-0.5b "s05_${v}_$round" -b 1; done
done
for v in fin cst cstp; do run_bench $v qwen2.5-1.5b "s15_$v" -b 1; done
for v in fin cst cstp; do run_bench $v qwen2.5-0.5b "s05d_$v" -b 1 -d 2000 -n 64; done
for v in cst fin; do TLLM_STACK_TIMING=1 run_bench $v qwen2.5-0.5b "s05_${v}_timing" -b 1 --enforce-eager; done
for v in fin cst cstp; do RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b "s30_$v" -b 1; done
run_gtest t_moe build/cst/test_moe_cuda
run_gtest t_engine build/cst/test_engine_gpu
run_done
