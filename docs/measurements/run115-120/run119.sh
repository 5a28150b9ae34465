#!/usr/bin/env bash
# Run 119: the quantized embedding dequantizes 8 columns per thread before storing any
# (build/qe) against the landed build before it (build/rem): the quantized suite, then 7B
# int4 / int8 tg b1 alternated, and an int4 timeline.
set -u
source scripts/device/run_lib.sh
run_init run119 "${LIMIT:-330}"
run_gtest t_quant build/qe/test_quant_cuda
for round in 1 2; do
  for v in rem qe; do
    run_bench $v qwen2.5-7b "s7_int4_${v}_$round" -b 1 --quantization int4 --quant-group-size 128
  done
done
for v in rem qe; do run_bench $v qwen2.5-7b "s7_int8_$v" -b 1 --quantization int8; done
run_trace 7b_int4_qe build/qe/tinyllm qwen2.5-7b --quantization int4 --quant-group-size 128
run_done
