#!/usr/bin/env bash
# Run 241 (session 44): FP8 weights on CUDA. In one call:
#  1. test_quant_cuda (every quantized-linear path with e4m3 codes beside int4 / int8, and
#     QuantCuda.Fp8ModelsMatchTheirDequantizedTwins: FP8 checkpoints and --quantization fp8
#     end to end against their dequantized twins on the CPU), test_moe_cuda's quantized
#     experts (FP8 experts too), test_engine_gpu's GpuParity (qwen3_fp8 now runs its FP8
#     weights as they are; qwen3_moe_fp8's 16 x 16 blocks stay dequantized).
#  2. Rows: Qwen2.5-7B shape tg b1 / b8 with --quantization fp8 beside int8 and bf16 (same
#     process kind, same card), 7B fp8 pp4096, Qwen3-30B-A3B fp8 tg b1 beside bf16.
# Build as in the session notes (B=build bash scripts/device/pack.sh; binaries in build/r241).
set -u
source scripts/device/run_lib.sh
run_init run241 "${LIMIT:-560}"
N=build/r241
RUN_TEST_TIMEOUT=220 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_moe $N/test_moe_cuda --gtest_filter='*Quantized*'
RUN_TEST_TIMEOUT=150 run_gtest t_engine $N/test_engine_gpu --gtest_filter='GpuParity*'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
grep -h "fp8" "$RUN_DIR/t_quant.log" | head -20
RUN_BENCH_TIMEOUT=120 run_bench r241 qwen2.5-7b 7b_fp8_tg -b 1,8 --quantization fp8
RUN_BENCH_TIMEOUT=120 run_bench r241 qwen2.5-7b 7b_int8_tg -b 1,8 --quantization int8
RUN_BENCH_TIMEOUT=90 run_bench r241 qwen2.5-7b 7b_bf16_tg -b 1,8
run_prefill 7b_fp8_pp4096 $N/tinyllm qwen2.5-7b 4096 --quantization fp8
RUN_BENCH_TIMEOUT=150 run_bench r241 qwen3-30b-a3b 30b_fp8_tg -b 1 --quantization fp8
RUN_BENCH_TIMEOUT=120 run_bench r241 qwen3-30b-a3b 30b_bf16_tg -b 1
run_done
