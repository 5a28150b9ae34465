#!/usr/bin/env bash
# Run 258 (session 48): the landed code's GPU suites (session 47's review mends had not run on
# a GPU) with the new end-to-end test of quantized MoE decode through the decoder-stack kernel
# (QuantCuda.MoeDecodeStepsThroughTheStackKernel); Qwen3-30B-A3B int4 g128 tg b1 with
# qgemv_tile at 1 tile in flight per warp (r258u1: its spills 140 / 1,004 -> 36 / 164 bytes)
# against 2 (r258), alternated; then run 257's traced int4 build (r257).
set -u
source scripts/device/run_lib.sh
run_init run258 "${LIMIT:-570}"
N=build/r258
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -hE "moe decode|FAILED|Failure" -A3 "$RUN_DIR"/t_quant.log | head -30
RUN_TEST_TIMEOUT=100 run_gtest t_moe $N/test_moe_cuda
run_gtest t_engine $N/test_engine_gpu
RUN_TEST_TIMEOUT=60 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
grep -hE "^\[  FAILED|Failure" -A4 "$RUN_DIR"/t_moe.log "$RUN_DIR"/t_engine.log "$RUN_DIR"/t_stack.log | head -30
for r in 1 2; do
  RUN_BENCH_TIMEOUT=100 run_bench r258 qwen3-30b-a3b 30b_int4_u2_$r -b 1 --quantization int4 --quant-group-size 128
  RUN_BENCH_TIMEOUT=100 run_bench r258u1 qwen3-30b-a3b 30b_int4_u1_$r -b 1 --quantization int4 --quant-group-size 128
done
TLLM_STACK_TRACE=$RUN_DIR/stack_30b_int4.txt RUN_BENCH_TIMEOUT=100 run_bench r257 qwen3-30b-a3b 30b_int4_trace -b 1 \
  --enforce-eager --quantization int4 --quant-group-size 128 -n 16
python3 scripts/device/stack_trace.py "$RUN_DIR/stack_30b_int4.txt" > "$RUN_DIR/stack_30b_int4.summary" 2>&1
tail -45 "$RUN_DIR/stack_30b_int4.summary"
run_done
