#!/usr/bin/env bash
# Run 189 (session 28): the spread of the 7B pp4096 ratio on the corrected limits (build r188,
# whose bench times its GEMM peak over back-to-back calls): three processes, each with its own
# peak reading, 3 repetitions each.
set -u
source scripts/device/run_lib.sh
run_init run189 "${LIMIT:-280}"
B=build/r188
for r in 1 2 3; do
  timeout 120 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    -p 4096 -n 16 -b 1 -r 3 --max-model-len 8192 > "$RUN_DIR/7b_pp4096_$r.log" 2>&1
  run_log "7b_pp4096_$r rc=$? $(grep -E 'limits measured|^\| (pp|tg)' "$RUN_DIR/7b_pp4096_$r.log" | cut -c1-90 | paste -sd' ')"
done
run_done
