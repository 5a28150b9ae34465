#!/usr/bin/env bash
# Run 133: the quantized q|k|v + RoPE epilogue with a cluster of two blocks pairing the
# panels at one panel per block (build/rc: the plain projection's split and x-staged kernel
# at the 7B shape) against run 132's 2-panel pairing (build/rl), and the logits gather
# skipped where the logits rows are the batch's rows (build/rc; build/rcg gathers always).
# Tests on rc, then alternated benches.
set -u
source scripts/device/run_lib.sh
run_init run133 "${LIMIT:-590}"
run_gtest t_quant build/rc/test_quant_cuda
run_gtest t_linear build/rc/test_kernels_cuda --gtest_filter='CudaLinear.*:CudaAttention.Rope*:CudaDecoderStack.*'
run_gtest t_engine build/rc/test_engine_gpu
run_gtest t_moe build/rc/test_moe_cuda
q4="--quantization int4 --quant-group-size 128"
for round in 1 2; do
  TLLM_FUSED_ROPE=0 run_bench rc qwen2.5-7b "s7_int4_off_$round" -b 1 $q4
  run_bench rl qwen2.5-7b "s7_int4_rl_$round" -b 1 $q4
  run_bench rc qwen2.5-7b "s7_int4_rc_$round" -b 1 $q4
done
for v in rl rc; do run_bench $v qwen2.5-7b "s7_int8_$v" -b 1 --quantization int8; done
TLLM_FUSED_ROPE=0 run_bench rc qwen2.5-7b s7_int8_off -b 1 --quantization int8
for round in 1 2; do
  for v in rcg rc; do run_bench $v qwen2.5-0.5b "s05_${v}_$round" -b 1; done
done
TLLM_FUSED_ROPE=0 run_bench rc qwen2.5-0.5b s05_int4_off -b 1 $q4
run_bench rc qwen2.5-0.5b s05_int4_rc -b 1 $q4
run_done
