#!/usr/bin/env bash
# Run 278 (session 53): does the 224-block grid of the 7B o_proj / down GEMV (one 16-row panel
# per block, 2 blocks per SM: 92 SMs run two blocks, 40 one) take its time from the SMs with
# two blocks? bench_quant_cuda --sweep-n times that kernel at K = 18,944 and 3,584 over N =
# 66 .. 396 panels (int4 g128). Prediction if per-SM issue sets it: 198, 224, 240 and 264
# panels take about the same time (two blocks on the busiest SM), and 132 about half of that;
# if the bytes set it, the time grows with N throughout. Then the kernel timeline of 7B int4
# g128 tg b1 on this card with the landed build (run 224c's was on an H100).
set -u
source scripts/device/run_lib.sh
run_init run278 "${LIMIT:-300}"
N=build/r278
timeout 150 $N/bench_quant_cuda --sweep-n > "$RUN_DIR/sweep_n.log" 2>&1
run_log "sweep rc=$?"
grep -E '^sweep|CEILING' "$RUN_DIR/sweep_n.log"
RUN_BENCH_TIMEOUT=90 run_trace 7b_int4 $N/tinyllm qwen2.5-7b --quantization int4 --quant-group-size 128
python3 scripts/dev/kernel_trace.py "$RUN_DIR/trace_7b_int4.csv" > "$RUN_DIR/trace_7b_int4.summary" 2>&1
head -20 "$RUN_DIR/trace_7b_int4.summary"
run_done
