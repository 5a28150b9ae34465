#!/usr/bin/env bash
# Run 276 (session 51): the GPU suites that the session's engine and loader changes reach
# (a closed structured output ending before min_tokens, a draft's ids past its vocabulary,
# the quantized-config checks), on the session's build; and a decode row to show the step
# loop did not slow (0.5B bf16 tg b1; run 272: 1,522.0).
set -u
source scripts/device/run_lib.sh
run_init run276 "${LIMIT:-300}"
N=build/r276
RUN_TEST_TIMEOUT=120 run_gtest t_engine $N/test_engine_gpu
RUN_TEST_TIMEOUT=60 run_gtest t_quant $N/test_quant_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -30
RUN_BENCH_TIMEOUT=30 run_bench r276 qwen2.5-0.5b 05b_r276 -b 1
run_done
