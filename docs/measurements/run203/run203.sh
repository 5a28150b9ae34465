#!/usr/bin/env bash
# Run 203 (session 33): (a) speculative decoding on CUDA, planned in session 32 (no GPU then):
# GpuSpeculative.* (a speculative run follows the plain decode up to a near-tie; the target as
# its own draft keeps >= 90% of drafts) and the demo pair's decode rate with and without drafts
# (draft model and n-gram; overhead-bound on a GPU). Binaries build/r203 = 84d73fe.
# (b) the decoder stack kernel requesting later weights into L2 while the attention runs
# (DRAM idles then): build/r203x with the knob TLLM_STACK_L2AHEAD (1 gate|up, 2 down, 4 next
# layer's q|k|v and o), alternated against r203 and the knob at 0 (its spills' cost).
set -u
source scripts/device/run_lib.sh
run_init run203 "${LIMIT:-560}"
RUN_TEST_TIMEOUT=200 run_gtest t_spec build/r203/test_engine_gpu --gtest_filter='GpuSpeculative.*:GpuAsync*'
for r in 1 2; do
  for m in 0.5b 1.5b; do
    run_bench r203 qwen2.5-$m ${m}_r203_$r -b 1
    for k in 0 1 3 7; do
      export TLLM_STACK_L2AHEAD=$k
      run_bench r203x qwen2.5-$m ${m}_k${k}_$r -b 1
    done
    unset TLLM_STACK_L2AHEAD
  done
done
run_log "bench/speculative.sh on cuda, draft model"
BIN=build/r203/tinyllm DEVICE=cuda KS="2 4" TEMPS="0 0.8" ROUNDS=1 timeout 150 bash bench/speculative.sh >"$RUN_DIR/spec_demo_cuda.md" 2>&1
run_log "rc=$? $(tail -5 "$RUN_DIR/spec_demo_cuda.md" | paste -sd' ' | cut -c1-300)"
BIN=build/r203/tinyllm DEVICE=cuda DRAFT="[ngram]" KS="3" TEMPS="0" ROUNDS=1 timeout 60 bash bench/speculative.sh >"$RUN_DIR/spec_ngram_cuda.md" 2>&1
run_log "rc=$? $(tail -3 "$RUN_DIR/spec_ngram_cuda.md" | paste -sd' ' | cut -c1-300)"
run_done
