#!/usr/bin/env bash
# Run 141: every gpu suite on the session's final build (b5ade86: run 140's kernels, the
# mma16816 refactor machine-code identical), and the int8 / int4 / bf16 7B rows once.
set -u
source scripts/device/run_lib.sh
run_init run141 "${LIMIT:-590}"
run_gtest t_quant build/fin20b/test_quant_cuda
run_gtest t_moe build/fin20b/test_moe_cuda
run_gtest t_engine build/fin20b/test_engine_gpu
run_gtest t_kernels build/fin20b/test_kernels_cuda
run_bench fin20b qwen2.5-7b s7_int8 -b 1 --quantization int8
run_bench fin20b qwen2.5-7b s7_int4 -b 1 --quantization int4 --quant-group-size 128
run_done
