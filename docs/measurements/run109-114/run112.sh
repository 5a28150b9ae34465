#!/usr/bin/env bash
# Run 112: the landed build (build/r110 = commit 8621809: fused q|k|v + RoPE GEMV, attention's
# early loads; run 111's RoPE-kernel release at entry was not kept): the serve check and
# the rows run 111 measured only with that change (7B b32, Qwen3-8B), 7B b1 once more.
set -u
source scripts/device/run_lib.sh
run_init run112 "${LIMIT:-300}"
B=build/r110
timeout 200 python3 tests/server/serve_async_check.py $B/tinyllm models/tiny-qwen2-demo --device cuda \
  > "$RUN_DIR/serve_async.log" 2>&1
run_log "serve_async rc=$? $(tail -1 "$RUN_DIR/serve_async.log")"
run_bench r110 qwen2.5-7b s7_b1_32 -b 1,32
run_bench r110 qwen3-8b q3_8b -b 1,8,32
run_bench r110 qwen3-30b-a3b moe_b1_8 -b 1,8
run_done
