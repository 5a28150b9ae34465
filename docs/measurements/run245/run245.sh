#!/usr/bin/env bash
# Run 245 (session 45): quant_gemm with a ring of 3-4 shared-memory stages (was 2) and token
# tiles past the block's tokens skipping their MMAs; the quantized MoE path chosen by
# moe_quant_path (decode / fused / dequant; TLLM_MOE_QUANT forces one):
#   test_quant_cuda, test_moe_cuda (the quantized tests on all three paths above 64 tokens),
#   GpuParity; bench_moe_cuda --quant-prefill (30B-A3B layer, T 64..8192, every path);
#   A/B against run 244's build (r244: 2 stages, no skipping): 7B int4 g128 and fp8, pp128
#   (quant_gemm at T = 128) and tg128 b32 (quant_gemm at T = 32); 30B-A3B fp8 pp2048 + tg b1.
set -u
source scripts/device/run_lib.sh
run_init run245 "${LIMIT:-590}"
N=build/r245
RUN_TEST_TIMEOUT=100 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_moe $N/test_moe_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $N/test_engine_gpu --gtest_filter='*GpuParity*'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
timeout 150 $N/bench_moe_cuda --quant-prefill > "$RUN_DIR/moe_prefill.log" 2>&1
run_log "moe_prefill rc=$?"
grep -E "^   (bf16|fp8|int4|int8) |CEILING" "$RUN_DIR/moe_prefill.log"
ab() {  # ab LABEL BUILD QUANT_ARGS...
  local n=$1 v=$2
  shift 2
  timeout 90 build/$v/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    --max-model-len 4096 -p 128 -n 128 -b 1,32 -r 3 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/$n.log" | cut -c1-60 | paste -sd' ')"
}
ab 7b_int4_new r245 --quantization int4 --quant-group-size 128
ab 7b_int4_old r244 --quantization int4 --quant-group-size 128
ab 7b_fp8_new r245 --quantization fp8
ab 7b_fp8_old r244 --quantization fp8
timeout 200 $N/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
  --max-model-len 4096 -p 2048 -n 128 -b 1 -r 3 --quantization fp8 > "$RUN_DIR/30b_fp8.log" 2>&1
run_log "30b_fp8 rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/30b_fp8.log" | cut -c1-100 | paste -sd' ')"
run_done
