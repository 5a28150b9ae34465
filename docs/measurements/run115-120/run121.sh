#!/usr/bin/env bash
# Run 121: the review's refactor (build/fin: the q|k|v GEMV's ROPE epilogue takes
# QkNormRopeParams instead of a 10-field copy, which changes every GEMV kernel's parameter
# block; env switches through one helper): the linear and rope-chain tests, the engine
# goldens, and a 7B row against run 116-117's 249.6-249.7.
set -u
source scripts/device/run_lib.sh
run_init run121 "${LIMIT:-200}"
run_gtest t_lin build/fin/test_kernels_cuda --gtest_filter='CudaLinear*:CudaAttention.RopeThen*:CudaDecoderStack*'
run_gtest t_engine build/fin/test_engine_gpu
run_bench fin qwen2.5-7b s7_b1 -b 1
run_done
