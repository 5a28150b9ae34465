#!/usr/bin/env bash
# Run 244 (prepared in session 44, not run: no device time left; apply fp8_no_offsets.diff and
# build first): FP8 weights without an offsets tensor (the packed FP8 weight carries
# codes and scales only; the MoE decode kernels no longer stage offsets for it):
# test_quant_cuda (Fp8ModelsMatchTheirDequantizedTwins also checks that no zeros tensor is
# allocated), test_moe_cuda's quantized experts, GpuParity; 7B fp8 tg b1 and its weight
# memory against run 241's 8,692 MiB.
set -u
source scripts/device/run_lib.sh
run_init run244 "${LIMIT:-240}"
N=build/r244
RUN_TEST_TIMEOUT=100 run_gtest t_quant $N/test_quant_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_moe $N/test_moe_cuda --gtest_filter='*Quantized*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $N/test_engine_gpu --gtest_filter='*GpuParity*'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
RUN_BENCH_TIMEOUT=80 run_bench r244 qwen2.5-7b 7b_fp8_tg -b 1 --quantization fp8
grep -h "MiB of weights" "$RUN_DIR/7b_fp8_tg.log" | cut -c1-220
run_done
