#!/usr/bin/env bash
# Run 114: the landed form of run 113's change (release at entry only without q/k norms):
# the chain test with the fused GEMV off, and 7B int4 / Qwen3-8B int4 once each.
set -u
source scripts/device/run_lib.sh
run_init run114 "${LIMIT:-170}"
B=build/r114
run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention.RopeThen*:CudaLinear.LinearRope*'
run_bench r114 qwen2.5-7b s7_int4 -b 1 --quantization int4 --quant-group-size 128
run_bench r114 qwen3-8b q3_8b_int4 -b 1 --quantization int4 --quant-group-size 128
run_done
