#!/usr/bin/env bash
# Run 202 (session 31): the linear kernel tests on the landed rule of run 201 (address-first x
# loads in every kernel that loads x at each group, up to 8 warps).
set -u
source scripts/device/run_lib.sh
run_init run202 "${LIMIT:-170}"
RUN_TEST_TIMEOUT=150 run_gtest t_linear build/r202/test_kernels_cuda --gtest_filter='CudaLinear.SkinnyGemm*:CudaLinear.LinearSiluMul*:CudaLinear.LinearResidualNorm*:CudaLinear.LinearRopeKv*'
run_done
