#!/usr/bin/env bash
# Run 171 (session 25): run 170's fused norm for 5-32 tokens measured slower (0.5B b8 -5%,
# 1.5B b32 -7%) and is reverted; this build keeps only the q|k|v rotation epilogue above 8
# tokens. CudaLinear tests, then 0.5B / 1.5B batched rows alternated against run 169's build
# and against this build with TLLM_FUSED_ROPE=0 (2 rounds), and timelines with the epilogue
# on and off (run 170's timeline had the attention 2 us slower behind the fused q|k|v).
set -u
source scripts/device/run_lib.sh
run_init run171 "${LIMIT:-560}"
B=build/r171
RUN_TEST_TIMEOUT=200 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.*'
for r in 1 2; do
  for m in qwen2.5-0.5b qwen2.5-1.5b; do
    for b in 8 16 32; do
      [ $m = qwen2.5-1.5b ] && [ $b = 8 ] && continue
      run_bench r169 $m ${m}_b${b}_r169_$r -b $b
      run_bench r171 $m ${m}_b${b}_r171_$r -b $b
      TLLM_FUSED_ROPE=0 run_bench r171 $m ${m}_b${b}_r171off_$r -b $b
    done
  done
done
run_trace 05_b32_on $B/tinyllm qwen2.5-0.5b -b 32
TLLM_FUSED_ROPE=0 run_trace 05_b32_off $B/tinyllm qwen2.5-0.5b -b 32
run_trace 05_b8_on $B/tinyllm qwen2.5-0.5b -b 8
TLLM_FUSED_ROPE=0 run_trace 05_b8_off $B/tinyllm qwen2.5-0.5b -b 8
run_done
