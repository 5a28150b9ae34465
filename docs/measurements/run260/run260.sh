#!/usr/bin/env bash
# Run 260 (session 49): bisect the int8 decoder stack's wrong result (a temporary
# CudaDecoderStack.Int8Bisect over the Qwen3-MoE test model's shape and its neighbours; the
# model-level test with TLLM_DECODER_STACK=1 forcing int8 through the stack), and a traced
# int4 build (traced_int4.diff + an event after route_token and one after the first requests
# of the gate|up phase) on Qwen3-30B-A3B int4 g128 tg b1.
set -u
source scripts/device/run_lib.sh
run_init run260 "${LIMIT:-400}"
N=build/r260
RUN_TEST_TIMEOUT=120 run_gtest t_bisect $N/test_kernels_cuda --gtest_filter='CudaDecoderStack.Int8Bisect'
grep -h "^BISECT" "$RUN_DIR"/t_bisect.log
grep -h "Failure" -A3 "$RUN_DIR"/t_bisect.log | head -40
TLLM_DECODER_STACK=1 RUN_TEST_TIMEOUT=120 run_gtest t_quant_forced $N/test_quant_cuda \
  --gtest_filter='QuantCuda.MoeDecodeStepsThroughTheStackKernel'
grep -hE "moe decode|Failure" -A2 "$RUN_DIR"/t_quant_forced.log | head -20
TLLM_STACK_TRACE=$RUN_DIR/stack_30b_int4.txt RUN_BENCH_TIMEOUT=100 run_bench r260t qwen3-30b-a3b 30b_int4_trace -b 1 \
  --enforce-eager --quantization int4 --quant-group-size 128 -n 16
python3 scripts/device/stack_trace.py "$RUN_DIR/stack_30b_int4.txt" > "$RUN_DIR/stack_30b_int4.summary" 2>&1
sed -n 1,40p "$RUN_DIR/stack_30b_int4.summary"
run_done
