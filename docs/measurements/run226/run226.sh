#!/usr/bin/env bash
# Run 226 (session 39, H100): FlashAttention-3's ping-pong in the wgmma prefill attention (the
# two consumer warpgroups take turns at issuing their MMAs, named barriers 1 / 2), against the
# same kernel without it (kPrefillSm90Serial; TLLM_ATTN_PINGPONG=0 in the engine).
# Run 224c: the kernel took 484 us of each 7B layer's 4,096-token prefill (248 TFLOP/s).
# Prediction: 5-15% off the kernel, i.e. 7B pp4096 +0.7-2%.
set -u
source scripts/device/run_lib.sh
run_init run226 "${LIMIT:-400}"
B=build/r226
RUN_TEST_TIMEOUT=120 run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention.Prefill*:CudaAttention.Wgmma*:CudaAttention.Mixed*'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
for round in 1 2; do
  timeout 60 $B/bench_attention_cuda --quick > "$RUN_DIR/bench_attn_$round.log" 2>&1
  run_log "bench_attn_$round rc=$? $(grep -E 'prefill_sm90|sm90_serial' "$RUN_DIR/bench_attn_$round.log" | cut -c1-75 | paste -sd' ')"
done
pp() {  # pp PINGPONG MODEL LABEL
  TLLM_ATTN_PINGPONG=$1 timeout 120 $B/tinyllm bench --model bench/configs/$2 --load-format dummy --device cuda \
    --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 > "$RUN_DIR/$3.log" 2>&1
  run_log "$3 rc=$? $(grep -E '^\| pp' "$RUN_DIR/$3.log" | cut -c1-90 | paste -sd' ')"
}
for round in 1 2; do
  for v in 0 1; do
    pp $v qwen2.5-7b 7b_pp4096_pp${v}_$round
    pp $v qwen2.5-0.5b 05b_pp4096_pp${v}_$round
  done
done
run_done
