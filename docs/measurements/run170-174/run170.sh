#!/usr/bin/env bash
# Run 170 (session 25): the fused residual norm for 5-32 tokens (the grid's last T blocks
# normalise a row each; 16-warp blocks take it too) and the q|k|v rotation epilogue above 8
# tokens. Tests, then the batched rows alternated against run 169's build (= 6b897c1), b1 and
# int4 rows as a check (the T = 1 norm epilogue changed by a few instructions), a timeline.
set -u
source scripts/device/run_lib.sh
run_init run170 "${LIMIT:-560}"
B=build/r170
RUN_TEST_TIMEOUT=240 run_gtest t_kern $B/test_kernels_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=90 run_gtest t_moe $B/test_moe_cuda
for m in qwen2.5-0.5b qwen2.5-1.5b; do
  for b in 8 16 32; do
    for v in r169 r170; do run_bench $v $m ${m}_b${b}_$v -b $b; done
  done
done
for b in 8 16; do
  for v in r169 r170; do run_bench $v qwen2.5-7b 7b_b${b}_$v -b $b; done
done
for v in r169 r170; do run_bench $v qwen2.5-7b 7b_b1_$v -b 1; done
for v in r169 r170; do run_bench $v qwen2.5-7b 7b_int4_b1_$v -b 1 --quantization int4 --quant-group-size 128; done
for v in r169 r170; do run_bench $v qwen2.5-7b 7b_int4_b8_$v -b 8 --quantization int4 --quant-group-size 128; done
run_trace 05_b32 $B/tinyllm qwen2.5-0.5b -b 32
run_done
