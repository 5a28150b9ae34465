#!/usr/bin/env bash
# Run 135: the landed build (f13b6da: the quantized q|k|v GEMV with RoPE + KV write, 2-panel
# pairing, x from L1 at T = 1): the quantized suite, the linear / rope / attention kernels and
# the engine goldens; 7B int4 / int8 tg b1 once more.
set -u
source scripts/device/run_lib.sh
run_init run135 "${LIMIT:-300}"
run_gtest t_quant build/fin19/test_quant_cuda
run_gtest t_linear build/fin19/test_kernels_cuda --gtest_filter='CudaLinear.*:CudaAttention.*'
run_gtest t_engine build/fin19/test_engine_gpu
run_bench fin19 qwen2.5-7b s7_int4 -b 1 --quantization int4 --quant-group-size 128
run_bench fin19 qwen2.5-7b s7_int8 -b 1 --quantization int8
run_done
