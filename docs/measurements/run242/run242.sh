#!/usr/bin/env bash
# Run 242 (session 44): the prefill dequantization as a tile stream (a warp per 1 KB tile,
# pairs of columns as bf16x2), the faster --quantization fp8 on load, and what run 241 left:
#  1. test_quant_cuda (DequantizeCublasMatchesReference and the model tests take the new
#     dequantization), test_moe_cuda's quantized experts (their prefill dequantizes too),
#     test_engine_gpu's HF-golden parity (qwen3_fp8 through the FP8 kernels).
#  2. Rows: 7B pp4096 with fp8 and int4 g128 (the dequantize + cuBLASLt path) beside bf16;
#     Qwen3-30B-A3B fp8 tg b1 and pp512 (it timed out in run 241 while quantizing on load).
# Build as in the session notes (binaries in build/r242).
set -u
source scripts/device/run_lib.sh
run_init run242 "${LIMIT:-500}"
N=build/r242
RUN_TEST_TIMEOUT=150 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_moe $N/test_moe_cuda --gtest_filter='*Quantized*'
RUN_TEST_TIMEOUT=120 run_gtest t_engine $N/test_engine_gpu --gtest_filter='*GpuParity*'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
grep -h "qwen3_fp8\|qwen3_moe_fp8" "$RUN_DIR/t_engine.log" | head -8
run_prefill 7b_fp8_pp4096 $N/tinyllm qwen2.5-7b 4096 --quantization fp8
run_prefill 7b_int4_pp4096 $N/tinyllm qwen2.5-7b 4096 --quantization int4 --quant-group-size 128
run_prefill 7b_bf16_pp4096 $N/tinyllm qwen2.5-7b 4096
RUN_BENCH_TIMEOUT=150 run_bench r242 qwen3-30b-a3b 30b_fp8_tg -b 1 --quantization fp8
RUN_BENCH_TIMEOUT=150 run_prefill 30b_fp8_pp2048 $N/tinyllm qwen3-30b-a3b 2048 --quantization fp8
run_done
