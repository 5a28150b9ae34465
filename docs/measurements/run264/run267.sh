#!/usr/bin/env bash
# Run 267 (session 50): int8 stacks on again by default (runs 264-266: the "int8 stack bug"
# was a routing near tie that the test's tie rule, in bf16 steps of the k-th logit, missed
# where that logit is near 0; the rule now measures at the logits' RMS). GPU suites; the
# model-level test prints each step's KL; Qwen3-30B-A3B int8 / int4 tg b1 with the stack
# against op by op (TLLM_DECODER_STACK=0), alternated.
set -u
source scripts/device/run_lib.sh
run_init run267 "${LIMIT:-560}"
N=build/r267
RUN_TEST_TIMEOUT=90 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
grep -hE "^\[  FAILED|Failure|near tie" -A3 "$RUN_DIR"/t_stack.log | head -40
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -hE "^\[  FAILED|Failure|moe decode|per step" -A1 "$RUN_DIR"/t_quant.log | grep -v "tinyllm info" | head -60
run_gtest t_engine $N/test_engine_gpu
for r in 1 2; do
  RUN_BENCH_TIMEOUT=100 run_bench r267 qwen3-30b-a3b 30b_int8_stack_$r -b 1 --quantization int8
  TLLM_DECODER_STACK=0 RUN_BENCH_TIMEOUT=100 run_bench r267 qwen3-30b-a3b 30b_int8_ops_$r -b 1 --quantization int8
done
RUN_BENCH_TIMEOUT=100 run_bench r267 qwen3-30b-a3b 30b_int4_stack -b 1 --quantization int4 --quant-group-size 128
run_done
