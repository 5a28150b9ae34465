#!/usr/bin/env bash
# Run 319 (session 64, H100): c1ea113 moved the weights check after the quantization setup and
# gave it a host form; the GPU form must be unchanged: test_engine_gpu (GpuWeightsFit), the
# 72B shape in bf16 refused at once, the 0.5B shape still generating. Pack build/r319:
# tinyllm, test_engine_gpu.
set -u
tar -xJf build/r319.tar.xz
source scripts/device/run_lib.sh
run_init run319 "${LIMIT:-200}"
B=build/r319
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
grep -E "Failure|Which is|Expected" "$RUN_DIR/t_engine.log" | head -20
C=bench/configs
mkdir -p /tmp/q72 && sed -e 's/"hidden_size": 3584/"hidden_size": 8192/' -e 's/"intermediate_size": 18944/"intermediate_size": 29568/' \
  -e 's/"num_hidden_layers": 28/"num_hidden_layers": 80/' -e 's/"num_attention_heads": 28/"num_attention_heads": 64/' \
  -e 's/"num_key_value_heads": 4/"num_key_value_heads": 8/' -e 's/"max_window_layers": 28/"max_window_layers": 80/' \
  $C/qwen2.5-7b/config.json > /tmp/q72/config.json
G="generate --load-format dummy --device cuda --prompt-ids 1,2 --max-tokens 4"
for args in "--model /tmp/q72" "--model $C/qwen2.5-0.5b"; do
  t0=$(date +%s%N)
  timeout 100 $B/tinyllm $G $args > "$RUN_DIR/cli.log" 2>&1
  run_log "$args rc=$? $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(grep -v '^\[tinyllm info\]' "$RUN_DIR/cli.log" | tail -2 | cut -c1-400 | paste -sd'|')"
done
run_done
