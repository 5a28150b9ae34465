#!/usr/bin/env bash
# Run 160 (session 23): the decoder stack kernel without grid barriers: every vector that
# passes between blocks carries a tag per element and readers wait for the tags they need.
# Tests first (a hang shows as a timeout), then the stack-kernel rows against run 157's build.
set -u
source scripts/device/run_lib.sh
run_init run160 "${LIMIT:-560}"
B=build/r160
RUN_TEST_TIMEOUT=120 run_gtest t_stack $B/test_kernels_cuda --gtest_filter='CudaDecoderStack*:CudaBackendTest*'
grep -q '^\[  PASSED' "$RUN_DIR/t_stack.log" || { tail -30 "$RUN_DIR/t_stack.log"; run_done; exit 1; }
RUN_TEST_TIMEOUT=120 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
for r in 1 2 3; do
  run_bench r157 qwen2.5-0.5b s05_base_$r -b 1
  run_bench r160 qwen2.5-0.5b s05_new_$r -b 1
done
for v in r157 r160; do run_bench $v qwen2.5-1.5b s15_$v -b 1; done
for v in r157 r160; do RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b s30_$v -b 1; done
for v in r157 r160; do TLLM_STACK_TIMING=1 run_bench $v qwen2.5-0.5b s05_timing_$v -b 1 --enforce-eager; done
run_bench r160 qwen2.5-0.5b s05_d2k_new -b 1 -d 2000
run_bench r157 qwen2.5-0.5b s05_d2k_base -b 1 -d 2000
run_done
