#!/usr/bin/env bash
# Run 138: run 137 with the 4-bit f16 operands fixed (the high nibble is 1024 + 16 q against
# x / 16, C_k = 64 there; run 137 had taken it for 16384 + 16 q and failed the int4 tests).
# Tests, the kernels alone, then the engine's 7B int4 / int8 tg b1 as before (00) and with
# x as f16 everywhere at T = 1 (11), alternated, and kernel timelines of both.
set -u
source scripts/device/run_lib.sh
run_init run138 "${LIMIT:-590}"
run_gtest t_quant build/f16/test_quant_cuda
for cfg in "0 0" "1 1"; do
  set -- $cfg
  TLLM_QUANT_X_F16=$1 TLLM_QUANT_STAGE_SMALL=$2 timeout 60 build/f16/bench_quant_cuda --quick > "$RUN_DIR/bq_$1$2.log" 2>&1
  run_log "bq $1$2 rc=$?"
  grep -E "^qgemv_int4_g128|^qgemv_int8|^decode_step" "$RUN_DIR/bq_$1$2.log" | grep " T1 \|decode" | awk '{print "   ", $1, $2, $3, $5, $6}' | tee -a "$RUN_DIR/progress.txt"
done
q4="--quantization int4 --quant-group-size 128"
for round in 1 2; do
  for cfg in "0 0" "1 1"; do
    set -- $cfg
    TLLM_QUANT_X_F16=$1 TLLM_QUANT_STAGE_SMALL=$2 run_bench f16 qwen2.5-7b "s7_int4_$1$2_$round" -b 1 $q4
    TLLM_QUANT_X_F16=$1 TLLM_QUANT_STAGE_SMALL=$2 run_bench f16 qwen2.5-7b "s7_int8_$1$2_$round" -b 1 --quantization int8
  done
done
for cfg in "0 0" "1 1"; do
  set -- $cfg
  TLLM_QUANT_X_F16=$1 TLLM_QUANT_STAGE_SMALL=$2 run_trace "int4_$1$2" build/f16/tinyllm qwen2.5-7b $q4
  TLLM_QUANT_X_F16=$1 TLLM_QUANT_STAGE_SMALL=$2 run_trace "int8_$1$2" build/f16/tinyllm qwen2.5-7b --quantization int8
done
run_done
