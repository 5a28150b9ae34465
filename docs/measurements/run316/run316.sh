#!/usr/bin/env bash
# Run 316 (session 64, H100): weights larger than the GPU refused before loading (5779e02):
# test_engine_gpu with GpuWeightsFit (and every other engine test, whose loads now pass the
# check first), test_quant_cuda (quantized loads through it; GGUF q3_K / iq4_xs on CUDA, 0723eb6)
# and test_moe_cuda, the
# CLI on shapes too large for the card with the seconds each took, and the two short rows.
# Pack build/r316: tinyllm, test_engine_gpu, test_quant_cuda, test_moe_cuda.
set -u
tar -xJf build/r316.tar.xz
source scripts/device/run_lib.sh
run_init run316 "${LIMIT:-400}"
B=build/r316
RUN_TEST_TIMEOUT=150 run_gtest t_engine $B/test_engine_gpu
grep -E "Failure|Which is|Expected|GpuWeightsFit" "$RUN_DIR/t_engine.log" | head -20
RUN_TEST_TIMEOUT=120 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_moe $B/test_moe_cuda
C=bench/configs
# Qwen2.5-72B's shape (145 GB of bf16 weights): run 313 failed after 18 s of loading.
mkdir -p /tmp/q72 && cp $C/qwen2.5-7b/generation_config.json /tmp/q72/ &&
  sed -e 's/"hidden_size": 3584/"hidden_size": 8192/' -e 's/"intermediate_size": 18944/"intermediate_size": 29568/' \
      -e 's/"num_hidden_layers": 28/"num_hidden_layers": 80/' -e 's/"num_attention_heads": 28/"num_attention_heads": 64/' \
      -e 's/"num_key_value_heads": 4/"num_key_value_heads": 8/' -e 's/"max_window_layers": 28/"max_window_layers": 80/' \
      $C/qwen2.5-7b/config.json > /tmp/q72/config.json
case_() {  # case_ LABEL ARGS...: the command's last 3 lines, its exit status and milliseconds
  local n=$1; shift
  local t0=$(date +%s%N)
  timeout 120 "$@" > "$RUN_DIR/$n.log" 2>&1
  local rc=$?
  run_log "$n rc=$rc $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(grep -v '^\[tinyllm info\]' "$RUN_DIR/$n.log" | tail -3 | cut -c1-400 | paste -sd'|')"
}
G="generate --load-format dummy --device cuda --prompt-ids 1,2 --max-tokens 4"
case_ q72_bf16 $B/tinyllm $G --model /tmp/q72
case_ ok_05b $B/tinyllm $G --model $C/qwen2.5-0.5b
RUN_BENCH_TIMEOUT=60 run_bench r316 qwen2.5-0.5b 05b_bf16 -b 1
RUN_BENCH_TIMEOUT=90 run_bench r316 qwen2.5-7b 7b_int4 -b 1 --quantization int4 --quant-group-size 128
run_done
