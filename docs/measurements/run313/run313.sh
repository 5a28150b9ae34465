#!/usr/bin/env bash
# Run 313 (session 63, H100): bad GPU configurations through the CLI (run 312's binary):
# each must end with a one-line error naming the cause, exit 1, no crash and no hang.
# As run: the device machine has no bc (the seconds column came out empty), and the last
# case, meant as the control, failed on --prompt (the bench configs carry no tokenizer;
# --prompt-ids 1,2 would have run). Every other case ran as intended.
set -u
tar -xJf build/r312.tar.xz
source scripts/device/run_lib.sh
run_init run313 "${LIMIT:-300}"
T=build/r312/tinyllm
C=bench/configs
# A Qwen2.5-72B-shaped config: 145 GB of bf16 weights, more than the card holds.
mkdir -p /tmp/q72 && cp $C/qwen2.5-7b/generation_config.json /tmp/q72/ &&
  sed -e 's/"hidden_size": 3584/"hidden_size": 8192/' -e 's/"intermediate_size": 18944/"intermediate_size": 29568/' \
      -e 's/"num_hidden_layers": 28/"num_hidden_layers": 80/' -e 's/"num_attention_heads": 28/"num_attention_heads": 64/' \
      -e 's/"num_key_value_heads": 4/"num_key_value_heads": 8/' -e 's/"max_window_layers": 28/"max_window_layers": 80/' \
      $C/qwen2.5-7b/config.json > /tmp/q72/config.json
case_() {  # case_ LABEL ARGS...: the command's last 3 lines, its exit status and seconds
  local n=$1; shift
  local t0=$(date +%s.%N)
  timeout 120 "$@" > "$RUN_DIR/$n.log" 2>&1
  local rc=$?
  run_log "$n rc=$rc $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5)s: $(grep -v '^\[tinyllm info\]' "$RUN_DIR/$n.log" | tail -3 | cut -c1-300 | paste -sd'|')"
}
G="generate --load-format dummy --device cuda --prompt hi --max-tokens 4"
case_ too_big $T $G --model /tmp/q72
case_ low_util $T $G --model $C/qwen2.5-7b --gpu-memory-utilization 0.05
case_ long_ctx $T $G --model $C/qwen2.5-0.5b --max-model-len 100000
case_ no_gpu env CUDA_VISIBLE_DEVICES= $T $G --model $C/qwen2.5-0.5b
case_ tp2_one_gpu $T $G --model $C/qwen2.5-0.5b --tensor-parallel-size 2
case_ kv_f16 $T $G --model $C/qwen2.5-0.5b --kv-cache-dtype float16
case_ blocks_few $T $G --model $C/qwen2.5-0.5b --num-kv-blocks 1 --max-model-len 64
case_ ok $T $G --model $C/qwen2.5-0.5b
nvidia-smi --query-gpu=memory.used --format=csv,noheader | tee "$RUN_DIR/mem_after.txt"
run_done
