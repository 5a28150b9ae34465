#!/usr/bin/env bash
# Run 280 (session 53, run 04:25): the engine-side changes of the session on the GPU (the detokenizer
# primed with the prompt's last ids, penalty / bad-word ids kept within a draft's vocabulary,
# stop_reason of a stop id as a number): test_engine_gpu (HF goldens, speculative decoding,
# async scheduling), test_quant_cuda and test_moe_cuda (model-level decode steps).
set -u
source scripts/device/run_lib.sh
run_init run280 "${LIMIT:-300}"
N=build/r280
RUN_TEST_TIMEOUT=150 run_gtest t_engine $N/test_engine_gpu
RUN_TEST_TIMEOUT=60 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=80 run_gtest t_moe $N/test_moe_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -30
run_done
