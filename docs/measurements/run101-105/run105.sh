#!/usr/bin/env bash
# Run 105: tests/server/serve_async_check.py on the GPU (tinyllm serve, async scheduling on
# against off, over HTTP), then decode rows of the landed build not yet measured with it:
# int8, 30B-A3B b1, 7B b32.  build/asy = the landed build; build/pack/lib as before.
set -u
source scripts/device/run_lib.sh
run_init run105 "${LIMIT:-400}"
timeout 200 python3 tests/server/serve_async_check.py build/asy/tinyllm models/tiny-qwen2-demo --device cuda \
  > "$RUN_DIR/serve_async.log" 2>&1
run_log "serve_async rc=$? $(tail -1 "$RUN_DIR/serve_async.log")"
run_bench asy qwen2.5-7b s7_int8 -b 1 --quantization int8
run_bench asy qwen2.5-7b s7_b32 -b 32
run_bench asy qwen3-30b-a3b moe_b1 -b 1
run_done
