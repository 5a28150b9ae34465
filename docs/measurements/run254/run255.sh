#!/usr/bin/env bash
# Run 255 (session 47): run 254's script after the fix of xown_area (a quantized stack's block
# owns whole 16-row panels of x: the row-split size overflowed into the staged scales), plus
# int8 and the stack kernel's phase times. Quantized projections in the persistent decoder-stack kernel
# (decoder_stack_qgemv.cuh). CudaDecoderStack tests (the new QuantizedMatchesOpByOpLayers),
# then tg128 batch 1 with the stack kernel (default) against the op-by-op path
# (TLLM_DECODER_STACK=0) of the same binary: Qwen3-30B-A3B int4 g128, Qwen2.5-0.5B int4 g64 /
# int8, Qwen2.5-1.5B int4 g64.
set -u
source scripts/device/run_lib.sh
run_init run255 "${LIMIT:-590}"
N=build/r255
RUN_TEST_TIMEOUT=200 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
grep -hE "^\[  FAILED|Failure|error|Expected|Which is|note:" "$RUN_DIR"/t_stack.log | head -40
pair() {  # pair LABEL MODEL ARGS...: the stack kernel, then op by op
  local n=$1 m=$2
  shift 2
  run_bench r255 "$m" "${n}_stack" -b 1 "$@"
  TLLM_DECODER_STACK=0 run_bench r255 "$m" "${n}_ops" -b 1 "$@"
}
pair 05b_int4 qwen2.5-0.5b --quantization int4 --quant-group-size 64
pair 15b_int4 qwen2.5-1.5b --quantization int4 --quant-group-size 64
RUN_BENCH_TIMEOUT=150 pair 30b_int4 qwen3-30b-a3b --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=150 pair 30b_int8 qwen3-30b-a3b --quantization int8
TLLM_STACK_TIMING=1 RUN_BENCH_TIMEOUT=150 run_bench r255 qwen3-30b-a3b 30b_int4_timing -b 1 --enforce-eager \
  --quantization int4 --quant-group-size 128
grep -h "decoder stack phases" "$RUN_DIR"/30b_int4_timing.log | tail -2
grep -h "decoder stack" "$RUN_DIR"/*_stack.log | sort | uniq -c | head
run_done
