#!/usr/bin/env bash
# Run 303 (session 59, H100): GpuParityF16 again (run 302's version asserted that every
# weight of qwen2_hd64 is exact in float16; a few ~6e-6 ones are float16 subnormals), and the
# 7B pp4096 in 1,024-token chunks workspace A/B of run 301 (-0.7% there, one reading each),
# three alternations. Pack build/r303: test_engine_gpu (and run 302's tinyllm).
set -u
tar -xJf build/r303.tar.xz
source scripts/device/run_lib.sh
run_init run303 "${LIMIT:-300}"
B=build/r303
RUN_TEST_TIMEOUT=150 run_gtest t_engine_f16 $B/test_engine_gpu --gtest_filter='GpuParityF16.*:GpuParity.*'
for r in 1 2 3; do
  for m in 1024 0; do
    TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=40 run_prefill 7b_pp4096_c1024_m${m}_$r $B/tinyllm qwen2.5-7b 4096 --max-num-batched-tokens 1024
  done
done
run_done
