#!/usr/bin/env bash
# Run 284 (session 55): the build to land (dense bf16 stack kernels without the MoE phases,
# layer pointers read from p.layers in them: run 282's D = 64 choice of r283 with r282's D = 128
# one) against the landed build r281 on an H100: the stack kernel's tests, MoE through it, the
# engine goldens; 0.5B and 1.5B tg b1 alternated; 7B pp4096 and 7B int4 tg b1 again; a
# timeline of 0.5B b1.
set -u
tar -xJf build/r284.tar.xz
source scripts/device/run_lib.sh
run_init run284 "${LIMIT:-420}"
RUN_TEST_TIMEOUT=120 run_gtest t_stack build/r284/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine build/r284/test_engine_gpu
RUN_TEST_TIMEOUT=90 run_gtest t_moe build/r284/test_moe_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2; do
  for v in r281 r284; do RUN_BENCH_TIMEOUT=30 run_bench $v qwen2.5-0.5b 05b_${v}_$r -b 1; done
  for v in r281 r284; do RUN_BENCH_TIMEOUT=40 run_bench $v qwen2.5-1.5b 15b_${v}_$r -b 1; done
done
for r in 1 2; do RUN_BENCH_TIMEOUT=60 run_prefill 7b_pp4096_$r build/r284/tinyllm qwen2.5-7b 4096; done
RUN_BENCH_TIMEOUT=100 run_bench r284 qwen2.5-7b 7b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=40 run_trace 05b_r284 build/r284/tinyllm qwen2.5-0.5b
run_done
