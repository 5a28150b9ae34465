#!/usr/bin/env bash
# Run 216 (session 36): what a kernel-to-kernel hand-off costs in a decode graph, by mechanism
# (bench/cuda/bench_handoff_cuda.cu): stream order, PDL (griddepcontrol.wait), a counter the
# producer's blocks bump, a grid barrier in one persistent kernel; vectors of 3,584 (7B) and
# 896 (0.5B) floats.
set -u
source scripts/device/run_lib.sh
run_init run216 "${LIMIT:-300}"
B=build/r216
for n in 3584 896; do
  timeout 120 $B/bench_handoff_cuda $n > "$RUN_DIR/handoff_$n.log" 2>&1
  run_log "handoff n=$n rc=$?"
  cat "$RUN_DIR/handoff_$n.log"
done
run_done
