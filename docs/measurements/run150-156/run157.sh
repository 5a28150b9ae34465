#!/usr/bin/env bash
# Run 157 (session 22, review): the counters' zeroing of new workspace memory moved into
# DeviceWorkspace (get_counters_zeroed), used by the decoder stack kernel and the MoE scratch.
set -u
source scripts/device/run_lib.sh
run_init run157 "${LIMIT:-200}"
B=build/r157
run_gtest t_stack $B/test_kernels_cuda --gtest_filter='CudaDecoderStack*:CudaBackendTest*'
run_gtest t_moe $B/test_moe_cuda
run_gtest t_engine $B/test_engine_gpu
run_bench r157 qwen2.5-0.5b s05 -b 1
run_done
