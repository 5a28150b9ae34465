#!/usr/bin/env bash
# Run 217 (session 36): the hand-off microbenchmark with two more grid-barrier forms (a
# separate "go" word bumped by the last arriver; fence + relaxed red / polls), and the 0.5B
# batch-1 decode through the decoder stack kernel against the op-by-op graph on this build
# (TLLM_DECODER_STACK=1 / 0, alternated twice).
set -u
source scripts/device/run_lib.sh
run_init run217 "${LIMIT:-400}"
B=build/r217
for n in 896 3584; do
  timeout 120 $B/bench_handoff_cuda $n > "$RUN_DIR/handoff_$n.log" 2>&1
  run_log "handoff n=$n rc=$?"
  cat "$RUN_DIR/handoff_$n.log"
done
for round in 1 2; do
  for st in 1 0; do
    TLLM_DECODER_STACK=$st run_bench r217 qwen2.5-0.5b 0.5b_stack${st}_r$round -b 1
  done
done
run_done
