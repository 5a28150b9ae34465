#!/usr/bin/env bash
# Run 244 (session 45): FP8 weights without an offsets tensor (fp8_no_offsets.diff, prepared in
# session 44), the FP8 code scan eight codes at a time on load, and quantized MoE prefill as a
# grouped GEMM over the codes (quant_gemm's kernel over moe_align's tiles) instead of every
# expert dequantized to bf16 per layer:
#   test_quant_cuda (Fp8ModelsMatchTheirDequantizedTwins also checks that no zeros tensor is
#   allocated), test_moe_cuda (the quantized tests on both prefill paths), GpuParity;
#   bench_moe_cuda --quant-prefill (30B-A3B layer, bf16 / fp8 / int4 / int8, T 128..8192, both
#   paths); 7B fp8 tg b1 (its load time: the on-load FP8 quantization and the code scan);
#   30B-A3B fp8 pp2048 + tg128 b1 (run 243: 16,628 / 297.2; load 142-153 s).
set -u
source scripts/device/run_lib.sh
run_init run244 "${LIMIT:-590}"
N=build/r244
RUN_TEST_TIMEOUT=100 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_moe $N/test_moe_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $N/test_engine_gpu --gtest_filter='*GpuParity*'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
timeout 150 $N/bench_moe_cuda --quant-prefill > "$RUN_DIR/moe_prefill.log" 2>&1
run_log "moe_prefill rc=$?"
grep -E "^   (bf16|fp8|int4|int8) |CEILING" "$RUN_DIR/moe_prefill.log"
RUN_BENCH_TIMEOUT=80 run_bench r244 qwen2.5-7b 7b_fp8_tg -b 1 --quantization fp8
grep -h "loaded\|MiB of weights" "$RUN_DIR/7b_fp8_tg.log" | cut -c1-240
timeout 200 $N/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
  --max-model-len 4096 -p 2048 -n 128 -b 1 -r 3 --quantization fp8 > "$RUN_DIR/30b_fp8.log" 2>&1
run_log "30b_fp8 rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/30b_fp8.log" | cut -c1-100 | paste -sd' ')"
grep -h "loaded" "$RUN_DIR/30b_fp8.log" | cut -c1-240
run_done
