#!/usr/bin/env bash
# Run 247 (session 45), the landed build: quant_gemm back at 2 static stages (3-4 level, run
# 246), a warp with no tokens skipping its k tiles; the quantized MoE decode kernels up to 16
# tokens (was 64), the grouped GEMM over the codes above that, the dequantized experts from 512
# pairs per expert:
#   test_quant_cuda, test_moe_cuda, test_engine_gpu (all); bench_moe_cuda --quant-prefill;
#   30B-A3B fp8 pp2048 + tg b1 / b32, and tg b32 with run 244's build (decode kernels at T = 32).
set -u
source scripts/device/run_lib.sh
run_init run247 "${LIMIT:-590}"
N=build/r247
RUN_TEST_TIMEOUT=100 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_moe $N/test_moe_cuda
RUN_TEST_TIMEOUT=200 run_gtest t_engine $N/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
timeout 100 $N/bench_moe_cuda --quant-prefill > "$RUN_DIR/moe_prefill.log" 2>&1
run_log "moe_prefill rc=$?"
grep -E "^   (fp8|int4|int8) " "$RUN_DIR/moe_prefill.log" | grep -E " (16|32|64|2048) " | cut -c1-70
m30() {  # m30 LABEL BUILD BENCH_ARGS...
  local n=$1 v=$2
  shift 2
  timeout 150 build/$v/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
    --max-model-len 4096 -n 128 -r 3 --quantization fp8 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/$n.log" | cut -c1-62 | paste -sd' ')"
  grep -h "loaded" "$RUN_DIR/$n.log" | cut -c1-200
}
m30 30b_fp8_new r247 -p 2048 -b 1,32
m30 30b_fp8_old r244 -p 16 -b 32
run_done
