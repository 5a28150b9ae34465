#!/usr/bin/env bash
# Run 140: what lands of runs 137-139. Only 8-bit codes take the f16 form (x staged as f16,
# x 2^-E per segment; a byte one prmt, one MMA per k step), in the 3-blocks-per-SM staged
# kernel and, for grids of 1-2 blocks per SM with K <= 8,192, its deep form; 4-bit codes
# keep the bf16 kernels (their f16 form was level to -0.5% in runs 137-139). build/fin20
# against run 138's binary in its old configuration (build/f16, TLLM_QUANT_X_F16=0
# TLLM_QUANT_STAGE_SMALL=0), alternated.
set -u
source scripts/device/run_lib.sh
run_init run140 "${LIMIT:-590}"
run_gtest t_quant build/fin20/test_quant_cuda
run_gtest t_moe build/fin20/test_moe_cuda
timeout 60 build/fin20/bench_quant_cuda --quick > "$RUN_DIR/bq.log" 2>&1
run_log "bq rc=$?"
grep -E "^qgemv_int8|^decode_step" "$RUN_DIR/bq.log" | grep " T1 \|decode" | awk '{print "   ", $1, $2, $3, $5, $6}' | tee -a "$RUN_DIR/progress.txt"
old() { TLLM_QUANT_X_F16=0 TLLM_QUANT_STAGE_SMALL=0 run_bench f16 "$@"; }
for round in 1 2; do
  old qwen2.5-7b "s7_int8_old_$round" -b 1 --quantization int8
  run_bench fin20 qwen2.5-7b "s7_int8_new_$round" -b 1 --quantization int8
done
old qwen2.5-1.5b s15_int8_old -b 1 --quantization int8
run_bench fin20 qwen2.5-1.5b s15_int8_new -b 1 --quantization int8
old qwen3-8b q8_int8_old -b 1 --quantization int8
run_bench fin20 qwen3-8b q8_int8_new -b 1 --quantization int8
old qwen2.5-7b s7_int4_old -b 1 --quantization int4 --quant-group-size 128
run_bench fin20 qwen2.5-7b s7_int4_new -b 1 --quantization int4 --quant-group-size 128
run_done
