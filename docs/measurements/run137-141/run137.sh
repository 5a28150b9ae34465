#!/usr/bin/env bash
# Run 137: the x-staged quantized decode GEMV with x as f16 (x 2^-E per scale segment) and the
# codes as f16 operands (int4: one shift per two k steps instead of three; int8: a byte in
# one prmt, one MMA per k step instead of two), and its deep form (2 blocks per SM) for the
# grids that read x from L1 (o_proj, down, the RoPE q|k|v). Same binary:
#   TLLM_QUANT_X_F16=0                          as before (bf16 operands, small grids from L1)
#   TLLM_QUANT_X_F16=1 TLLM_QUANT_STAGE_SMALL=0 f16 in the large grids only
#   TLLM_QUANT_X_F16=1 TLLM_QUANT_STAGE_SMALL=1 f16 everywhere at T = 1 (the new default)
set -u
source scripts/device/run_lib.sh
run_init run137 "${LIMIT:-590}"
run_gtest t_quant build/f16/test_quant_cuda
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass build/f16/test_quant_cuda 2>/dev/null | awk '/Function : .*quant_gemv_kernel/{p=1} /Function : /{if ($0 !~ /quant_gemv_kernel/) p=0} p' | xz > "$RUN_DIR/sass_quant_gemv.txt.xz"
  run_log "sass $(xz -dc "$RUN_DIR/sass_quant_gemv.txt.xz" | grep -c 'Function :') kernels"
fi
for cfg in "0 0" "1 0" "1 1"; do
  set -- $cfg
  TLLM_QUANT_X_F16=$1 TLLM_QUANT_STAGE_SMALL=$2 timeout 60 build/f16/bench_quant_cuda --quick > "$RUN_DIR/bq_$1$2.log" 2>&1
  run_log "bq $1$2 rc=$?"
  grep -E "^qgemv_int4_g128|^qgemv_int8|^decode_step" "$RUN_DIR/bq_$1$2.log" | grep " T1 \|decode" | awk '{print "   ", $1, $2, $3, $5, $6}' | tee -a "$RUN_DIR/progress.txt"
done
q4="--quantization int4 --quant-group-size 128"
for round in 1 2; do
  for cfg in "0 0" "1 0" "1 1"; do
    set -- $cfg
    TLLM_QUANT_X_F16=$1 TLLM_QUANT_STAGE_SMALL=$2 run_bench f16 qwen2.5-7b "s7_int4_$1$2_$round" -b 1 $q4
  done
done
for cfg in "0 0" "1 0" "1 1"; do
  set -- $cfg
  TLLM_QUANT_X_F16=$1 TLLM_QUANT_STAGE_SMALL=$2 run_bench f16 qwen2.5-7b "s7_int8_$1$2" -b 1 --quantization int8
done
run_done
