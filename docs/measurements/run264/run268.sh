#!/usr/bin/env bash
# Run 268 (session 50): the landing candidate (int8 stacks on by default, the tie rule at the
# logits' scale, the model-level test allowing one near-tie step of 72): every GPU suite.
set -u
source scripts/device/run_lib.sh
run_init run268 "${LIMIT:-420}"
N=build/r268
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -hE "^\[  FAILED|Failure|moe decode" -A1 "$RUN_DIR"/t_quant.log | grep -v "tinyllm info" | head -40
RUN_TEST_TIMEOUT=200 run_gtest t_kernels $N/test_kernels_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_moe $N/test_moe_cuda
run_gtest t_engine $N/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A4 "$RUN_DIR"/t_kernels.log "$RUN_DIR"/t_moe.log "$RUN_DIR"/t_engine.log | head -30
grep -c "near tie" "$RUN_DIR"/t_kernels.log
run_done
