#!/usr/bin/env bash
# Run 307b (session 61): one GPU (no multi-GPU kind was lent). Two tensor-parallel ranks on
# GPU 0 summed through host memory (GpuTensorParallel.TwoRanksOnOneGpuThroughHostMemory: the
# sharded CUDA forward, a thread and stream per rank, against HF, the CPU and one GPU); the
# quantized and MoE suites on the build whose loaders slice and whose MoE GEMMs set their
# shared-memory limits per device.
set -u
tar -xJf build/r307.tar.xz
source scripts/device/run_lib.sh
run_init run307b "${LIMIT:-560}"
B=build/r307
RUN_TEST_TIMEOUT=150 run_gtest tp1gpu $B/test_engine_gpu --gtest_filter='*GpuTensorParallel*'
RUN_TEST_TIMEOUT=200 run_gtest moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=200 run_gtest quant $B/test_quant_cuda
run_done
