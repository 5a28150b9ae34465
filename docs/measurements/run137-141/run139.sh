#!/usr/bin/env bash
# Run 139: the landed form of runs 137-138. The x-staged quantized decode GEMV always takes x
# as f16 (x 2^-E per scale segment) and the codes as f16 operands; grids of at most 2 blocks
# per SM take its deep form (2 blocks per SM) where x is staged in one round of loads (K <=
# 8,192), else x from L1 (7B down). build/fin20 against run 138's binary (build/f16) in its
# old configuration (TLLM_QUANT_X_F16=0 TLLM_QUANT_STAGE_SMALL=0), alternated.
set -u
source scripts/device/run_lib.sh
run_init run139 "${LIMIT:-590}"
run_gtest t_quant build/fin20/test_quant_cuda
run_gtest t_moe build/fin20/test_moe_cuda
timeout 60 build/fin20/bench_quant_cuda --quick > "$RUN_DIR/bq.log" 2>&1
run_log "bq rc=$?"
grep -E "^qgemv_int4_g128|^qgemv_int8|^decode_step" "$RUN_DIR/bq.log" | grep " T1 \|decode" | awk '{print "   ", $1, $2, $3, $5, $6}' | tee -a "$RUN_DIR/progress.txt"
old() { TLLM_QUANT_X_F16=0 TLLM_QUANT_STAGE_SMALL=0 run_bench f16 "$@"; }
q4="--quantization int4 --quant-group-size 128"
for round in 1 2; do
  old qwen2.5-7b "s7_int4_old_$round" -b 1 $q4
  run_bench fin20 qwen2.5-7b "s7_int4_new_$round" -b 1 $q4
  old qwen2.5-7b "s7_int8_old_$round" -b 1 --quantization int8
  run_bench fin20 qwen2.5-7b "s7_int8_new_$round" -b 1 --quantization int8
done
old qwen2.5-7b s7_int4g64_old -b 1 --quantization int4
run_bench fin20 qwen2.5-7b s7_int4g64_new -b 1 --quantization int4
old qwen3-8b q8_int4_old -b 1 $q4
run_bench fin20 qwen3-8b q8_int4_new -b 1 $q4
old qwen2.5-1.5b s15_int8_old -b 1 --quantization int8
run_bench fin20 qwen2.5-1.5b s15_int8_new -b 1 --quantization int8
run_done
