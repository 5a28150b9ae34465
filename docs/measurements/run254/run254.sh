#!/usr/bin/env bash
# Run 254 (session 47): quantized projections in the persistent decoder-stack kernel
# (decoder_stack_qgemv.cuh). CudaDecoderStack tests (the new QuantizedMatchesOpByOpLayers),
# then tg128 batch 1 with the stack kernel (default) against the op-by-op path
# (TLLM_DECODER_STACK=0) of the same binary: Qwen3-30B-A3B int4 g128, Qwen2.5-0.5B int4 g64 /
# int8, Qwen2.5-1.5B int4 g64.
set -u
source scripts/device/run_lib.sh
run_init run254 "${LIMIT:-590}"
N=build/r254
RUN_TEST_TIMEOUT=200 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
grep -hE "^\[  FAILED|Failure|error|Expected|Which is|note:" "$RUN_DIR"/t_stack.log | head -40
pair() {  # pair LABEL MODEL ARGS...: the stack kernel, then op by op
  local n=$1 m=$2
  shift 2
  run_bench r254 "$m" "${n}_stack" -b 1 "$@"
  TLLM_DECODER_STACK=0 run_bench r254 "$m" "${n}_ops" -b 1 "$@"
}
pair 05b_int4 qwen2.5-0.5b --quantization int4 --quant-group-size 64
pair 05b_int8 qwen2.5-0.5b --quantization int8
pair 15b_int4 qwen2.5-1.5b --quantization int4 --quant-group-size 64
RUN_BENCH_TIMEOUT=150 pair 30b_int4 qwen3-30b-a3b --quantization int4 --quant-group-size 128
grep -h "decoder stack" "$RUN_DIR"/*_stack.log | sort | uniq -c | head
run_done
