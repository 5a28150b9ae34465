#!/usr/bin/env bash
# Run 222b (session 37): serve_new_paths.py again, waiting for /health (the first call asked
# while the model was still loading: 503), and 7B bf16 tg b1 twice more (run 222 read 251.4
# tok/s against run 219's 257.4 with no CUDA change between them).
set -u
source scripts/device/run_lib.sh
run_init run222b "${LIMIT:-300}"
B=build/r222
timeout 120 python3 docs/measurements/run222/serve_new_paths.py $B/tinyllm models/tiny-qwen2-demo > "$RUN_DIR/serve_new_paths.log" 2>&1
run_log "serve_new_paths rc=$? $(tail -1 "$RUN_DIR/serve_new_paths.log")"
run_bench r222 qwen2.5-7b 7b_b1_a -b 1
run_bench r222 qwen2.5-7b 7b_b1_b -b 1
run_done
