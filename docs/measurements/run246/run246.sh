#!/usr/bin/env bash
# Run 246 (session 45): quant_gemm's MMAs unconditional again (run 245 guarded each token tile's
# MMA, so the codes' operands were rebuilt per tile: 7B int4 pp128 -31%); a warp whose 32
# token columns are empty skips its k tiles; the ring of 3-4 stages against 2
# (TLLM_QUANT_GEMM_STAGES=2, same binary) and against run 244's build (2 stages):
#   test_quant_cuda, test_moe_cuda, GpuParity; bench_moe_cuda --quant-prefill with 3-4 stages
#   and with 2 (T 1..8192, every path); 7B int4 g128 / fp8 pp128 + tg b1 / b32 three ways;
#   30B-A3B fp8 pp2048 + tg b1.
set -u
source scripts/device/run_lib.sh
run_init run246 "${LIMIT:-590}"
N=build/r246
RUN_TEST_TIMEOUT=100 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_moe $N/test_moe_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $N/test_engine_gpu --gtest_filter='*GpuParity*'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
timeout 100 $N/bench_moe_cuda --quant-prefill > "$RUN_DIR/moe_prefill.log" 2>&1
run_log "moe_prefill rc=$?"
TLLM_QUANT_GEMM_STAGES=2 timeout 100 $N/bench_moe_cuda --quant-prefill > "$RUN_DIR/moe_prefill_2stages.log" 2>&1
run_log "moe_prefill_2stages rc=$?"
paste -d'|' <(grep -E "^   (bf16|fp8|int4|int8) " "$RUN_DIR/moe_prefill.log") \
  <(grep -E "^   (bf16|fp8|int4|int8) " "$RUN_DIR/moe_prefill_2stages.log" | cut -c24-60)
ab() {  # ab LABEL BUILD QUANT_ARGS...
  local n=$1 v=$2
  shift 2
  timeout 90 build/$v/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    --max-model-len 4096 -p 128 -n 128 -b 1,32 -r 3 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/$n.log" | cut -c1-50 | paste -sd' ')"
}
ab 7b_int4_new r246 --quantization int4 --quant-group-size 128
TLLM_QUANT_GEMM_STAGES=2 ab 7b_int4_new2 r246 --quantization int4 --quant-group-size 128
ab 7b_int4_old r244 --quantization int4 --quant-group-size 128
ab 7b_fp8_new r246 --quantization fp8
TLLM_QUANT_GEMM_STAGES=2 ab 7b_fp8_new2 r246 --quantization fp8
ab 7b_fp8_old r244 --quantization fp8
timeout 150 $N/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
  --max-model-len 4096 -p 2048 -n 128 -b 1 -r 3 --quantization fp8 > "$RUN_DIR/30b_fp8.log" 2>&1
run_log "30b_fp8 rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/30b_fp8.log" | cut -c1-100 | paste -sd' ')"
run_done
