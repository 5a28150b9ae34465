#!/usr/bin/env bash
# Run 224c (session 39, H100): kernel timelines of the three rows still short of their targets
# on this card: 7B bf16 prefill of 4,096 tokens (73-74%, target 75%), 7B int4 g128 tg b1
# (64%, target 70%), 0.5B bf16 tg b1 (47%, target 50%).
set -u
source scripts/device/run_lib.sh
run_init run224c "${LIMIT:-400}"
B=build/r224
CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$RUN_DIR/trace_7b_pp4096.csv \
  timeout 120 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  --max-model-len 8192 -p 4096 -n 1 -b 1 -r 2 > "$RUN_DIR/trace_7b_pp4096.log" 2>&1
run_log "trace pp4096 rc=$? $(grep -E '^\| pp' "$RUN_DIR/trace_7b_pp4096.log" | cut -c1-90 | paste -sd' ')"
run_trace 7b_int4 $B/tinyllm qwen2.5-7b --quantization int4 --quant-group-size 128
run_trace 05b $B/tinyllm qwen2.5-0.5b
run_done
