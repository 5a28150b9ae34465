#!/usr/bin/env bash
# Run 147 (session 21): the landed code (2340975, session 20's final commit: its host-side
# refactor of the quantized GEMV's kernel choice had not run on a GPU) with every gpu suite
# in full, and the decode rows.
set -u
source scripts/device/run_lib.sh
run_init run147 "${LIMIT:-590}"
B=build/fin21
run_gtest t_engine $B/test_engine_gpu
run_gtest t_quant $B/test_quant_cuda
run_gtest t_moe $B/test_moe_cuda
run_gtest t_kernels $B/test_kernels_cuda
run_bench fin21 qwen2.5-7b s7_bf16 -b 1
run_bench fin21 qwen2.5-7b s7_int8 -b 1 --quantization int8
run_bench fin21 qwen2.5-7b s7_int4 -b 1 --quantization int4 --quant-group-size 128
run_bench fin21 qwen2.5-0.5b s05_bf16 -b 1
run_done
