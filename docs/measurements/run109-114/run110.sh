#!/usr/bin/env bash
# Run 110: the split-keys decode attention issues its loads of earlier steps' keys before
# griddepcontrol.wait (TLLM_ATTN_EARLY_LOADS), now that the fused q|k|v GEMV releases it at
# its entry (TLLM_FUSED_ROPE). Suites first, then the 2 x 2 of both switches, alternated.
set -u
source scripts/device/run_lib.sh
run_init run110 "${LIMIT:-580}"
B=build/r110
run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention*:CudaLinear*'
RUN_TEST_TIMEOUT=240 run_gtest t_kernels $B/test_kernels_cuda --gtest_filter='-CudaAttention*:CudaLinear*'
run_gtest t_engine $B/test_engine_gpu
run_gtest t_quant $B/test_quant_cuda
run_gtest t_moe $B/test_moe_cuda
for round in 1 2; do
  for fe in 00 10 11 01; do
    TLLM_FUSED_ROPE=${fe:0:1} TLLM_ATTN_EARLY_LOADS=${fe:1:1} run_bench r110 qwen2.5-7b "s7_${fe}_$round" -b 1
  done
done
for fe in 00 11; do
  TLLM_FUSED_ROPE=${fe:0:1} TLLM_ATTN_EARLY_LOADS=${fe:1:1} run_bench r110 qwen2.5-7b "s7b8_$fe" -b 8
  TLLM_FUSED_ROPE=${fe:0:1} TLLM_ATTN_EARLY_LOADS=${fe:1:1} run_bench r110 qwen2.5-1.5b "s15b8_$fe" -b 8
  TLLM_FUSED_ROPE=${fe:0:1} TLLM_ATTN_EARLY_LOADS=${fe:1:1} run_bench r110 qwen2.5-0.5b "s05b8_$fe" -b 8
  TLLM_FUSED_ROPE=${fe:0:1} TLLM_ATTN_EARLY_LOADS=${fe:1:1} run_bench r110 qwen2.5-7b "s7d39_$fe" -b 1 -d 3900 -n 64
done
for e in 0 1; do
  TLLM_ATTN_EARLY_LOADS=$e run_bench r110 qwen2.5-7b "s7_int4_e$e" -b 1 --quantization int4 --quant-group-size 128
done
for fe in 00 11; do
  TLLM_FUSED_ROPE=${fe:0:1} TLLM_ATTN_EARLY_LOADS=${fe:1:1} run_bench r110 qwen2.5-1.5b "s15b8_${fe}_2" -b 8
done
run_trace 7b_11 $B/tinyllm qwen2.5-7b
run_done
