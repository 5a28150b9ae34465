#!/usr/bin/env bash
# Run 312 (session 63, H100): the GPU suites on f4bdb23 + the NaN-model test (the engine's
# count of draws from logits rows with no usable value, on CUDA), then the two short issue rows.
# Pack build/r312: tinyllm, test_engine_gpu, test_kernels_cuda, test_moe_cuda, test_quant_cuda (xz -9e).
set -u
tar -xJf build/r312.tar.xz
source scripts/device/run_lib.sh
run_init run312 "${LIMIT:-580}"
B=build/r312
RUN_TEST_TIMEOUT=150 run_gtest t_engine $B/test_engine_gpu
grep -E "Failure|Which is|Expected|error" "$RUN_DIR/t_engine.log" | head -30
RUN_TEST_TIMEOUT=90 run_gtest t_kernels_part $B/test_kernels_cuda --gtest_filter='CudaSample.*:CudaDecoderStack.*:CudaBackendTest.*'
RUN_TEST_TIMEOUT=120 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_quant $B/test_quant_cuda
RUN_BENCH_TIMEOUT=60 run_bench r312 qwen2.5-0.5b 05b_bf16 -b 1
RUN_BENCH_TIMEOUT=90 run_bench r312 qwen2.5-7b 7b_int4 -b 1 --quantization int4 --quant-group-size 128
run_done
