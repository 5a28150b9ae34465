#!/usr/bin/env bash
# Run 149 (session 21, review): quant_gemv's grid size from one helper (host code; every
# kernel's machine code identical by sass_compare): test_quant_cuda, and one int8 row.
set -u
source scripts/device/run_lib.sh
run_init run149 "${LIMIT:-200}"
run_gtest t_quant build/fin21b/test_quant_cuda
run_bench fin21b qwen2.5-7b s7_int8 -b 1 --quantization int8
run_done
