#!/usr/bin/env bash
# Run 176 (session 26): the q|k|v GEMV with the rotation epilogue releases the decode attention
# at its entry above 8 tokens again when the heads are 64 wide (0.5B), after its epilogue for
# wider heads (1.5B, 7B): run 171 had 0.5B b16 / b32 faster with the early release and 1.5B
# slower. Base: run 175's build (same kernels as b00612b but the MT ones, which it never takes).
set -u
source scripts/device/run_lib.sh
run_init run176 "${LIMIT:-400}"
B=build/r176
RUN_TEST_TIMEOUT=120 run_gtest t_rope $B/test_kernels_cuda --gtest_filter='CudaLinear.LinearRopeKvWrite*:CudaAttention.*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  for b in 12 16 24 32; do
    for v in r175 r176; do run_bench $v qwen2.5-0.5b 05_b${b}_${v}_$r -b $b; done
  done
done
for v in r175 r176; do run_bench $v qwen2.5-1.5b 15_b32_$v -b 32; done
for v in r175 r176; do run_bench $v qwen2.5-0.5b 05_b8_$v -b 8; done
run_done
