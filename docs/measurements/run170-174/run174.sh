#!/usr/bin/env bash
# Run 174 (session 25): on top of run 173's build, the fused residual norm for rows of at most
# 1,024 (0.5B) at any decode batch up to 32: the last block's warps take a row each (the
# norm kernel's one-warp rows, same bits), instead of the standalone norm kernel above 4
# tokens; 2-4 rows now side by side too. Tests, then rows against run 173's build.
set -u
source scripts/device/run_lib.sh
run_init run174 "${LIMIT:-480}"
B=build/r174
RUN_TEST_TIMEOUT=150 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.*'
RUN_TEST_TIMEOUT=60 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=60 run_gtest t_moe $B/test_moe_cuda
for b in 4 8 16 32; do
  for v in r173 r174; do run_bench $v qwen2.5-0.5b 05_b${b}_$v -b $b; done
done
for v in r173 r174; do run_bench $v qwen2.5-0.5b 05_int4_b8_$v -b 8 --quantization int4 --quant-group-size 128; done
for v in r173 r174; do run_bench $v qwen2.5-7b 7b_b1_$v -b 1; done
for b in 8 16; do
  for v in r173 r174; do run_bench $v qwen2.5-0.5b 05_b${b}_${v}_2 -b $b; done
done
run_done
