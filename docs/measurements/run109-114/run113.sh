#!/usr/bin/env bash
# Run 113: the rotation kernel releases the decode attention at its entry on the quantized
# path only (Backend::RopeKvWrite::release_attention_early, the model's hint for quantized
# o projections; TLLM_ROPE_RELEASE_EARLY=0/1 in the same binary), alternated.
set -u
source scripts/device/run_lib.sh
run_init run113 "${LIMIT:-440}"
B=build/r113
run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention.RopeThen*:CudaAttention.QkNorm*:CudaLinear.LinearRope*'
run_gtest t_quant $B/test_quant_cuda
run_gtest t_engine $B/test_engine_gpu
for round in 1 2; do
  for e in 0 1; do
    TLLM_ROPE_RELEASE_EARLY=$e run_bench r113 qwen2.5-7b "s7_int4_e${e}_$round" -b 1 --quantization int4 --quant-group-size 128
  done
done
for e in 0 1; do
  TLLM_ROPE_RELEASE_EARLY=$e run_bench r113 qwen2.5-7b "s7_int8_e$e" -b 1 --quantization int8
done
for e in 0 1; do
  TLLM_ROPE_RELEASE_EARLY=$e run_bench r113 qwen3-8b "q3_8b_int4_e$e" -b 1 --quantization int4 --quant-group-size 128
done
run_done
