#!/usr/bin/env bash
# Run 118: the landed build (build/rem = e52ff8a): the serve check on the GPU, then kernel
# timelines of the quantized 7B decode steps (int8 had none) for the next session's count.
set -u
source scripts/device/run_lib.sh
run_init run118 "${LIMIT:-300}"
timeout 200 python3 tests/server/serve_async_check.py build/rem/tinyllm models/tiny-qwen2-demo --device cuda \
  > "$RUN_DIR/serve_async.log" 2>&1
run_log "serve_async rc=$? $(tail -1 "$RUN_DIR/serve_async.log")"
run_trace 7b_int8 build/rem/tinyllm qwen2.5-7b --quantization int8
run_trace 7b_int4 build/rem/tinyllm qwen2.5-7b --quantization int4 --quant-group-size 128
run_done
