#!/usr/bin/env bash
# Run 222 (session 37): the session's final code on CUDA. The engine change (cache_salt
# seeding the prefix-cache hash chain) is backend-independent, and the server's new paths
# (beam search, best_of, background responses) run above the engine; this checks that the GPU
# suites still pass and the batch-1 rows hold: test_engine_gpu,
# the async serve check on CUDA, this session's server paths on a CUDA server
# (serve_new_paths.py), 0.5B and 7B bf16 tg b1, test_moe_cuda, test_quant_cuda,
# test_kernels_cuda. Outcome: every suite passed (test_kernels_cuda 35 tests before its 150 s
# limit); serve_new_paths.py asked while the model loaded (503), fixed and passed in run222b.sh;
# 0.5B 1,562.8 tok/s (36%), 7B 251.4 (84%; run 219: 257.4 on a card with a 3% higher GEMM peak).
set -u
source scripts/device/run_lib.sh
run_init run222 "${LIMIT:-560}"
B=build/r222
RUN_TEST_TIMEOUT=200 run_gtest t_engine_gpu $B/test_engine_gpu
timeout 150 python3 tests/server/serve_async_check.py $B/tinyllm models/tiny-qwen2-demo --device cuda > "$RUN_DIR/serve_async.log" 2>&1
run_log "serve_async rc=$? $(tail -1 "$RUN_DIR/serve_async.log")"
timeout 120 python3 docs/measurements/run222/serve_new_paths.py $B/tinyllm models/tiny-qwen2-demo > "$RUN_DIR/serve_new_paths.log" 2>&1
run_log "serve_new_paths rc=$? $(tail -1 "$RUN_DIR/serve_new_paths.log")"
run_bench r222 qwen2.5-0.5b 0.5b_b1 -b 1
run_bench r222 qwen2.5-7b 7b_b1 -b 1
RUN_TEST_TIMEOUT=100 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=100 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_kernels $B/test_kernels_cuda
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
run_done
