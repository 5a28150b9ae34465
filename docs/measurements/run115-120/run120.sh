#!/usr/bin/env bash
# Run 120: the quantized embedding runs 512 columns per block (a grid of T x K / 512 blocks)
# (build/qe2) against the landed build before it (build/rem): the quantized suite, then 7B
# int4 / int8 tg b1 alternated, and an int4 timeline.
set -u
source scripts/device/run_lib.sh
run_init run120 "${LIMIT:-330}"
run_gtest t_quant build/qe2/test_quant_cuda
for round in 1 2; do
  for v in rem qe2; do
    run_bench $v qwen2.5-7b "s7_int4_${v}_$round" -b 1 --quantization int4 --quant-group-size 128
  done
done
for v in rem qe2; do run_bench $v qwen2.5-7b "s7_int8_$v" -b 1 --quantization int8; done
run_trace 7b_int4_qe2 build/qe2/tinyllm qwen2.5-7b --quantization int4 --quant-group-size 128
run_done
