#!/usr/bin/env bash
# Run 277 (session 53): the GPU suites on the landed build (5c206ea): sessions 51-52 changed
# the engine (check_request on the caller's thread, process_sampled's guard, the mask budget)
# and the loader (e773218's FP8 spec fix never ran on a GPU: run 276 had test_quant_cuda
# 15/16 before it); the serve check on CUDA (the HTTP worker pool of 779ef35); then the
# issues' decode / prefill rows on this card to show nothing slowed (no kernel changed since
# run 275).
set -u
source scripts/device/run_lib.sh
run_init run277 "${LIMIT:-580}"
N=build/r277
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_engine $N/test_engine_gpu
RUN_TEST_TIMEOUT=100 run_gtest t_moe $N/test_moe_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -30
timeout 100 python3 tests/server/serve_async_check.py $N/tinyllm models/tiny-qwen2-demo --device cuda \
  > "$RUN_DIR/serve_async.log" 2>&1
run_log "serve_async rc=$? $(tail -1 "$RUN_DIR/serve_async.log")"
RUN_BENCH_TIMEOUT=30 run_bench r277 qwen2.5-0.5b 05b_b1 -b 1
RUN_BENCH_TIMEOUT=90 run_bench r277 qwen2.5-7b 7b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=60 run_bench r277 qwen2.5-7b 7b_b1 -b 1
RUN_BENCH_TIMEOUT=90 run_prefill 7b_pp4096 $N/tinyllm qwen2.5-7b 4096
run_done
