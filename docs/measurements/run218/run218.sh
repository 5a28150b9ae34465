#!/usr/bin/env bash
# Run 218 (session 36): grid barrier forms of the decoder stack kernel (TLLM_STACK_BARRIER:
# 0 one counter, 1 a word per block 4 bytes apart, 2 a word per block 32 bytes apart, polled
# by warp 0 of every block): the hand-off microbenchmark with the word forms, CudaDecoderStack.*
# under each form, then tg128 batch 1 alternated at 0.5B (x2), 1.5B and 30B-A3B. The word
# forms were a build of this run only (not kept: 0.5B -20 to -23%); the 30B-A3B rows did not
# run (`-r` given twice: the bench refused it).
set -u
source scripts/device/run_lib.sh
run_init run218 "${LIMIT:-580}"
B=build/r218
timeout 120 $B/bench_handoff_cuda 896 > "$RUN_DIR/handoff_896.log" 2>&1
run_log "handoff rc=$?"
grep -E "persist|flags|pdl " "$RUN_DIR/handoff_896.log"
for f in 0 1 2; do
  TLLM_STACK_BARRIER=$f RUN_TEST_TIMEOUT=150 run_gtest t_stack_$f $B/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
done
for round in 1 2; do
  for f in 0 1 2; do
    TLLM_STACK_BARRIER=$f run_bench r218 qwen2.5-0.5b 0.5b_f${f}_r$round -b 1
  done
done
for f in 0 1 2; do
  TLLM_STACK_BARRIER=$f run_bench r218 qwen2.5-1.5b 1.5b_f$f -b 1
done
for f in 0 1; do
  TLLM_STACK_BARRIER=$f RUN_BENCH_TIMEOUT=120 run_bench r218 qwen3-30b-a3b 30b_f$f -b 1 -r 2
done
run_done
