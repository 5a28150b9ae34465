#!/usr/bin/env bash
# Run 188 (session 28): the bench's limits timed over back-to-back calls (cmd_bench.cpp,
# seconds_per_call) against the old one-call-per-sync reading (build/r187's tinyllm, the
# same bench code as 9308c35), the events-timed copy of bench_stream_cuda as the reference,
# and every target row of the issues on the new reading; test_engine_gpu (the demo model
# found through TLLM_TEST_SOURCE_DIR).
set -u
source scripts/device/run_lib.sh
run_init run188 "${LIMIT:-560}"
B=build/r188
timeout 60 $B/bench_stream_cuda > "$RUN_DIR/stream.log" 2>&1
run_log "stream rc=$? $(head -1 "$RUN_DIR/stream.log")"
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  run_bench r187 qwen2.5-7b 7b_b1_old_$r -b 1
  run_log "$(grep 'limits measured' "$RUN_DIR/7b_b1_old_$r.log")"
  run_bench r188 qwen2.5-7b 7b_b1_new_$r -b 1
  run_log "$(grep 'limits measured' "$RUN_DIR/7b_b1_new_$r.log")"
done
run_bench r188 qwen2.5-0.5b 05_b1 -b 1
run_bench r188 qwen2.5-7b 7b_int4 -b 1 --quantization int4 --quant-group-size 128
run_bench r188 qwen2.5-7b 7b_int8 -b 1 --quantization int8
RUN_BENCH_TIMEOUT=150 run_bench r188 qwen3-30b-a3b 30b_b1 -b 1
timeout 120 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  -p 4096 -n 16 -b 1 -r 3 --max-model-len 8192 > "$RUN_DIR/7b_pp4096.log" 2>&1
run_log "7b_pp4096 rc=$? $(grep -E 'limits measured|^\| pp' "$RUN_DIR/7b_pp4096.log" | cut -c1-90 | paste -sd' ')"
run_done
