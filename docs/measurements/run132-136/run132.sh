#!/usr/bin/env bash
# Run 132: the quantized q|k|v GEMV with RoPE + KV write in its epilogue (build/rk: x-staged
# kernel for T = 1; build/rl: the same with the x-from-L1 kernel). Tests first, then 7B int4
# g128 / int8 tg b1 with the epilogue on and off in the same binary (TLLM_FUSED_ROPE),
# alternated, and batch 8.
set -u
source scripts/device/run_lib.sh
run_init run132 "${LIMIT:-590}"
run_gtest t_quant build/rk/test_quant_cuda
run_gtest t_linear build/rk/test_kernels_cuda --gtest_filter='CudaLinear.*:CudaAttention.Rope*'
q4="--quantization int4 --quant-group-size 128"
for round in 1 2; do
  TLLM_FUSED_ROPE=0 run_bench rk qwen2.5-7b "s7_int4_off_$round" -b 1 $q4
  run_bench rk qwen2.5-7b "s7_int4_rk_$round" -b 1 $q4
  run_bench rl qwen2.5-7b "s7_int4_rl_$round" -b 1 $q4
done
TLLM_FUSED_ROPE=0 run_bench rk qwen2.5-7b s7_int8_off -b 1 --quantization int8
run_bench rk qwen2.5-7b s7_int8_rk -b 1 --quantization int8
run_bench rl qwen2.5-7b s7_int8_rl -b 1 --quantization int8
TLLM_FUSED_ROPE=0 run_bench rk qwen2.5-7b s7_int4_b8_off -b 8 $q4
run_bench rk qwen2.5-7b s7_int4_b8_rk -b 8 $q4
run_done
