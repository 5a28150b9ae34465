#!/usr/bin/env bash
# Run 261 (session 49): (1) the int8 bisect again with --quantization int8's own codes
# (symmetric per row) at kernel level, and the model-level int8 / int4 stack against op by op
# over 8 prompts, per decode step; (2) a candidate stack kernel (r261b: each layer's pointers
# in shared memory, copied a layer ahead by cp.async; the router logits read by all threads in
# one round trip) against the landed one (r261a), alternated: Qwen3-30B-A3B int4 g128 / bf16
# and Qwen2.5-0.5B bf16 tg b1; the candidate's stack tests.
set -u
source scripts/device/run_lib.sh
run_init run261 "${LIMIT:-580}"
N=build/r261b
RUN_TEST_TIMEOUT=120 run_gtest t_stack $N/test_kernels_cuda --gtest_filter='CudaDecoderStack*'
grep -h "^BISECT" "$RUN_DIR"/t_stack.log
grep -h "Failure" -A3 "$RUN_DIR"/t_stack.log | head -30
RUN_TEST_TIMEOUT=150 run_gtest t_quant $N/test_quant_cuda --gtest_filter='QuantCuda.MoeDecodeSteps*:QuantCuda.Int8StackSeedSweep'
grep -hE "^SWEEP|moe decode|Failure" -A1 "$RUN_DIR"/t_quant.log | head -40
for r in 1 2; do
  for v in r261a r261b; do
    run_bench $v qwen2.5-0.5b 05b_bf16_${v}_$r -b 1
    RUN_BENCH_TIMEOUT=100 run_bench $v qwen3-30b-a3b 30b_int4_${v}_$r -b 1 --quantization int4 --quant-group-size 128
  done
done
for v in r261a r261b; do
  RUN_BENCH_TIMEOUT=120 run_bench $v qwen3-30b-a3b 30b_bf16_${v} -b 1
done
run_done
