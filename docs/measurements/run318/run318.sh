#!/usr/bin/env bash
# Run 318 (session 64, H100): shapes near the card's size that the weights check must let
# through (it is a lower bound; run 316 checked the refusals): Qwen2.5-32B's shape in bf16
# (61 GiB of matrices against ~78.6 free) and Qwen2.5-72B's in int4 on load (34 GiB at 4
# bits, ~40 GiB as loaded with int8 embedding / lm_head), each generating 4 tokens from
# dummy weights. run 316's binary (build/r316.tar.xz).
set -u
tar -xJf build/r316.tar.xz
source scripts/device/run_lib.sh
run_init run318 "${LIMIT:-560}"
T=build/r316/tinyllm
C=bench/configs
mk() {  # mk DIR HIDDEN INTER LAYERS HEADS KV_HEADS: the 7B config with these sizes
  mkdir -p "$1" && cp $C/qwen2.5-7b/generation_config.json "$1"/ &&
    sed -e "s/\"hidden_size\": 3584/\"hidden_size\": $2/" -e "s/\"intermediate_size\": 18944/\"intermediate_size\": $3/" \
        -e "s/\"num_hidden_layers\": 28/\"num_hidden_layers\": $4/" -e "s/\"num_attention_heads\": 28/\"num_attention_heads\": $5/" \
        -e "s/\"num_key_value_heads\": 4/\"num_key_value_heads\": $6/" -e "s/\"max_window_layers\": 28/\"max_window_layers\": $4/" \
        $C/qwen2.5-7b/config.json > "$1"/config.json
}
mk /tmp/q32 5120 27648 64 40 8
mk /tmp/q72 8192 29568 80 64 8
case_() {  # case_ LABEL ARGS...: exit status, milliseconds, the last lines that are not info
  local n=$1; shift
  local t0=$(date +%s%N)
  timeout 250 "$@" > "$RUN_DIR/$n.log" 2>&1
  local rc=$?
  run_log "$n rc=$rc $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(grep -E 'loaded|error' "$RUN_DIR/$n.log" | tail -2 | cut -c1-300 | paste -sd'|') $(tail -1 "$RUN_DIR/$n.log" | cut -c1-200)"
}
G="generate --load-format dummy --device cuda --prompt-ids 1,2 --max-tokens 4 --max-model-len 256"
case_ q32_bf16 $T $G --model /tmp/q32
case_ q72_int4 $T $G --model /tmp/q72 --quantization int4 --quant-group-size 128
nvidia-smi --query-gpu=memory.used --format=csv,noheader | tee "$RUN_DIR/mem_after.txt"
run_done
