#!/usr/bin/env bash
# Run 227 (session 39, H100): why the wgmma prefill attention takes 484 us per 7B layer inside
# the engine's 4,096-token prefill (run 224c) but 382-385 us alone (run 226, same kernel, the
# form without ping-pong). Hypothesis: the GEMMs around it hold the card at its power limit
# and the SM clock drops. nvidia-smi samples clocks and power every 20 ms while
# bench_attention_cuda --quick and then the engine's pp4096 run. Binaries: run 226's
# (TLLM_ATTN_PINGPONG=0 there is the landed code).
set -u
source scripts/device/run_lib.sh
run_init run227 "${LIMIT:-200}"
B=build/r226
sample() {  # sample LABEL CMD...: the command with clocks / power sampled beside it
  local n=$1; shift
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv,noheader -lms 20 > "$RUN_DIR/clocks_$n.csv" 2>&1 &
  local smi=$!
  "$@" > "$RUN_DIR/$n.log" 2>&1
  local rc=$?
  kill $smi; wait $smi 2>/dev/null
  run_log "$n rc=$rc $(awk -F', ' '{gsub(/ MHz| W/,""); if ($2>0) {n++; c+=$2; p+=$4; if ($2<m||m==0) m=$2}} END {printf "samples %d, SM MHz mean %.0f min %d, W mean %.0f", n, c/n, m, p/n}' "$RUN_DIR/clocks_$n.csv")"
}
sample attn $B/bench_attention_cuda --quick
sample pp4096 env TLLM_ATTN_PINGPONG=0 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  --max-model-len 8192 -p 4096 -n 1 -b 1 -r 5
grep -E "sm90|^\| pp" "$RUN_DIR"/attn.log "$RUN_DIR"/pp4096.log | cut -c1-120
run_done
