#!/usr/bin/env bash
# Run 115: weight loads with an L2 evict_first cache policy (build/ef: -DTLLM_WEIGHT_EVICT_FIRST=1)
# against main (build/main). Question: does keeping the weight stream from evicting the small
# working set (KV cache, residual, norm weights, activations) from L2 shorten the per-layer
# chains? Suites on ef first, then decode rows alternated main / ef.
set -u
source scripts/device/run_lib.sh
run_init run115 "${LIMIT:-580}"
run_gtest t_lin_efx build/efx/test_kernels_cuda --gtest_filter='CudaLinear*:CudaDecoderStack*:CudaAttention.RopeThen*'
run_gtest t_quant_efx build/efx/test_quant_cuda
run_gtest t_moe_efx build/efx/test_moe_cuda
for round in 1 2; do
  for v in main efx; do run_bench $v qwen2.5-7b "s7_${v}_$round" -b 1; done
  for v in main efx; do run_bench $v qwen2.5-0.5b "s05_${v}_$round" -b 1; done
done
for v in main efx; do
  run_bench $v qwen2.5-7b "s7_int4_$v" -b 1 --quantization int4 --quant-group-size 128
  run_bench $v qwen2.5-7b "s7_int8_$v" -b 1 --quantization int8
  TLLM_DECODER_STACK=0 run_bench $v qwen2.5-0.5b "s05op_$v" -b 1
  run_bench $v qwen2.5-1.5b "s15_$v" -b 1
  run_bench $v qwen2.5-7b "s7d39_$v" -b 1 -d 3900 -n 64
  run_bench $v qwen2.5-7b "s7b8_$v" -b 8
done
for v in main efx; do RUN_BENCH_TIMEOUT=120 run_bench $v qwen3-30b-a3b "moe_$v" -b 1; done
run_trace 7b_efx build/efx/tinyllm qwen2.5-7b
run_trace 7b_main build/main/tinyllm qwen2.5-7b
run_done
