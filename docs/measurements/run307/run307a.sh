#!/usr/bin/env bash
# Run 307a (session 61): one GPU (no multi-GPU kind was lent): test_engine_gpu on this
# session's build (the engine's KV cache from the model, the model's TP=1 path), with
# GpuTensorParallel.* skipping below 2 GPUs, and the 7B / 0.5B rows on one GPU.
set -u
tar -xJf build/r307.tar.xz
source scripts/device/run_lib.sh
run_init run307a "${LIMIT:-400}"
B=build/r307
RUN_TEST_TIMEOUT=240 run_gtest engine_gpu $B/test_engine_gpu
grep -E "SKIPPED|Skipped|GTEST_SKIP|needs 2 GPUs" "$RUN_DIR/engine_gpu.log" | head -5 > "$RUN_DIR/skips.txt"
RUN_BENCH_TIMEOUT=120 run_bench r307 qwen2.5-7b 7b_b1 -b 1
RUN_BENCH_TIMEOUT=90 run_bench r307 qwen2.5-0.5b 05b_b1 -b 1
run_done
