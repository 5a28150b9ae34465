#!/usr/bin/env bash
# Run 161 (session 23): run 160's tagged vectors with a block barrier at each phase end (run
# 160 lost reproducibility: attention's value tiles alias the GEMV vector), all 8 words of a
# vector in flight at once, and a 64-ns pause between polls.
set -u
source scripts/device/run_lib.sh
run_init run161 "${LIMIT:-560}"
B=build/r161
RUN_TEST_TIMEOUT=120 run_gtest t_stack $B/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
for r in 1 2; do
  run_bench r157 qwen2.5-0.5b s05_base_$r -b 1
  run_bench r161 qwen2.5-0.5b s05_new_$r -b 1
done
for v in r157 r161; do TLLM_STACK_TIMING=1 run_bench $v qwen2.5-0.5b s05_timing_$v -b 1 --enforce-eager; done
run_done
