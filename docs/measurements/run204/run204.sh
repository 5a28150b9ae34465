#!/usr/bin/env bash
# Run 204 (session 33): head_dim 32 in the CUDA attention (the demo draft model's; run 203's
# GpuSpeculative.FollowsThePlainDecode failed on it), CUDA graphs for uniform multi-token
# steps (speculative verification, a draft catching up), the load-time head-dim check.
# build/r204 = 84d73fe + those changes; build/r203 = 84d73fe.
set -u
source scripts/device/run_lib.sh
run_init run204 "${LIMIT:-560}"
B=build/r204
RUN_TEST_TIMEOUT=200 run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention.*'
RUN_TEST_TIMEOUT=200 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  run_bench r203 qwen2.5-0.5b 0.5b_b1_r203_$r -b 1
  run_bench r204 qwen2.5-0.5b 0.5b_b1_r204_$r -b 1
done
run_bench r203 qwen2.5-0.5b 0.5b_b8_r203 -b 8
run_bench r204 qwen2.5-0.5b 0.5b_b8_r204 -b 8
run_log "bench/speculative.sh on cuda, draft model"
BIN=$B/tinyllm DEVICE=cuda KS="1 2 4" TEMPS="0 0.8" ROUNDS=1 timeout 150 bash bench/speculative.sh >"$RUN_DIR/spec_demo_cuda.md" 2>&1
run_log "rc=$? $(tail -7 "$RUN_DIR/spec_demo_cuda.md" | paste -sd' ' | cut -c1-900)"
for v in r203 r204; do
  BIN=build/$v/tinyllm DEVICE=cuda DRAFT="[ngram]" KS="3" TEMPS="0" ROUNDS=1 timeout 60 bash bench/speculative.sh >"$RUN_DIR/spec_ngram_cuda_$v.md" 2>&1
  run_log "ngram $v rc=$? $(tail -2 "$RUN_DIR/spec_ngram_cuda_$v.md" | paste -sd' ' | cut -c1-300)"
done
run_done
