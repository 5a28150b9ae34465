#!/usr/bin/env bash
# Run 219 (session 36): the session's sampling changes on CUDA (vLLM's allowed_token_ids and
# bad_words in the sampler's ban / allow-only rows, prompt_logprobs with ranks): test_engine_gpu
# (its async-scheduling mixed batch now carries both), then the batch-1 rows of the landed
# build (0.5B, 7B bf16).
set -u
source scripts/device/run_lib.sh
run_init run219 "${LIMIT:-400}"
B=build/r219
RUN_TEST_TIMEOUT=240 run_gtest t_engine_gpu $B/test_engine_gpu
grep -E "FAILED|Failure" -A5 "$RUN_DIR/t_engine_gpu.log" | head -40
run_bench r219 qwen2.5-0.5b 0.5b_b1 -b 1
run_bench r219 qwen2.5-7b 7b_b1 -b 1
run_done
