#!/usr/bin/env bash
# Run 298 (session 58, H100): one helper (allow_dynamic_smem, device_caps.cu) decides every
# per-launch shared-memory opt-in from the kernel's own limit (cudaFuncGetAttributes), in
# place of quant_gemv's 4 KB headroom, moe_quant's hand-counted static size and the
# attention launchers' once-per-process flags: the suites whose launchers changed
# (CudaAttention.*, test_quant_cuda with the K = 9,344 case that failed before session 57's
# fix, test_moe_cuda with its int4 g32 T = 24 round, test_engine_gpu), then the issues' rows
# on this build: 7B bf16 pp4096 x4, 7B int4 g128 / 0.5B bf16 / 7B bf16 tg128 b1.
set -u
tar -xJf build/r298.tar.xz
source scripts/device/run_lib.sh
run_init run298 "${LIMIT:-560}"
B=build/r298
RUN_TEST_TIMEOUT=200 run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention*'
RUN_TEST_TIMEOUT=100 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2 3 4; do
  RUN_BENCH_TIMEOUT=40 run_prefill 7b_pp4096_$r $B/tinyllm qwen2.5-7b 4096
done
RUN_BENCH_TIMEOUT=40 run_bench r298 qwen2.5-7b 7b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=30 run_bench r298 qwen2.5-0.5b 05b_b1 -b 1
RUN_BENCH_TIMEOUT=40 run_bench r298 qwen2.5-7b 7b_b1 -b 1
run_done
