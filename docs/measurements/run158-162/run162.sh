#!/usr/bin/env bash
# Run 162 (session 23): the decoder stack kernel's barrier polled with relaxed loads and one
# acquire fence after the last (was: an acquire load per poll). Tests, then the stack rows
# alternated against run 157's build.
set -u
source scripts/device/run_lib.sh
run_init run162 "${LIMIT:-560}"
B=build/r162
RUN_TEST_TIMEOUT=120 run_gtest t_stack $B/test_kernels_cuda --gtest_filter='CudaDecoderStack*:CudaBackendTest*'
RUN_TEST_TIMEOUT=120 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
for r in 1 2 3; do
  run_bench r157 qwen2.5-0.5b s05_base_$r -b 1
  run_bench r162 qwen2.5-0.5b s05_new_$r -b 1
done
for r in 1 2; do for v in r157 r162; do run_bench $v qwen2.5-1.5b s15_${v}_$r -b 1; done; done
for v in r157 r162; do RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b s30_$v -b 1; done
run_done
