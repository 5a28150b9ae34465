#!/usr/bin/env bash
# Run 203 (planned in session 32, which had no GPU machine): speculative decoding on CUDA.
# The GPU tests of the feature (GpuSpeculative.*: a speculative run follows the plain decode up
# to a near-tie; the target as its own draft keeps >= 90% of drafts) and the demo pair's
# decode rate with and without drafts (overhead-bound on a GPU: a correctness and overhead
# check, not a measure of what a 7B target with a 0.5B draft would gain).
# Binaries: build/r203/{test_engine_gpu,tinyllm} from this commit (scripts/device/pack.sh).
set -u
source scripts/device/run_lib.sh
run_init run203 "${LIMIT:-300}"
RUN_TEST_TIMEOUT=200 run_gtest t_spec build/r203/test_engine_gpu --gtest_filter='GpuSpeculative.*:GpuAsync*'
run_log "bench/speculative.sh on cuda"
BIN=build/r203/tinyllm DEVICE=cuda KS="1 3 5" ROUNDS=3 timeout 60 bash bench/speculative.sh >"$RUN_DIR/spec_demo_cuda.md" 2>&1
run_done
