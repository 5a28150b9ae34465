#!/usr/bin/env bash
# Run 253 (session 46, review): the sm_90a MoE GEMM takes the backend's SM count through
# MoeExpertParams and moe_align's grouping as a MoeMeta; test_moe_cuda, test_engine_gpu, and one
# bf16 30B-A3B layer at T = 4096 (a grid of the wrong size would show there).
set -u
source scripts/device/run_lib.sh
run_init run253 "${LIMIT:-240}"
N=build/r253
RUN_TEST_TIMEOUT=120 run_gtest t_moe $N/test_moe_cuda
grep -hE "^\[  FAILED|Failure" -A6 "$RUN_DIR"/t_moe.log | head -20
RUN_TEST_TIMEOUT=60 run_gtest t_engine $N/test_engine_gpu
timeout 40 $N/bench_moe_cuda --quant-prefill --scheme bf16 --tokens 4096 2>&1 | grep -E "^   bf16" | tee "$RUN_DIR/layer.log"
run_done
