#!/usr/bin/env bash
# Run 282 (session 55): the bf16 stack kernel of dense models without the MoE phases
# (template kMoe = false). Run 281 found Qwen2.5-0.5B tg b1 at 1,388 tok/s on an H100
# against 1,427 at b7f3a68 (session 39): the stack kernel 597 -> 616 us per step. ptxas: the
# bf16 D = 64 kernel spills 20 / 48 bytes since sessions 47-49 (0 at b7f3a68), 0 without the
# MoE phases. r282: dense kernels, layer pointers in shared memory at D = 64 as before;
# r283: the same with the pointer copy flipped for dense kernels (off at D = 64, on at 128);
# r281: the landed build. Tests of the stack kernel, MoE through it, the engine goldens.
set -u
tar -xJf build/r282.tar.xz
source scripts/device/run_lib.sh
run_init run282 "${LIMIT:-560}"
RUN_TEST_TIMEOUT=120 run_gtest t_stack build/r282/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine build/r282/test_engine_gpu
RUN_TEST_TIMEOUT=90 run_gtest t_moe build/r282/test_moe_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2 3; do
  for v in r281 r282 r283; do RUN_BENCH_TIMEOUT=30 run_bench $v qwen2.5-0.5b 05b_${v}_$r -b 1; done
done
for r in 1 2; do
  for v in r281 r282 r283; do RUN_BENCH_TIMEOUT=40 run_bench $v qwen2.5-1.5b 15b_${v}_$r -b 1; done
done
for v in r281 r282; do RUN_BENCH_TIMEOUT=90 run_bench $v qwen3-30b-a3b 30b_${v} -b 1; done
RUN_BENCH_TIMEOUT=40 run_trace 05b_r282 build/r282/tinyllm qwen2.5-0.5b
run_done
