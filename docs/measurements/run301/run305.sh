#!/usr/bin/env bash
# Run 305 (session 60): what run 304 left, on the same binaries (build/r304 with
# test_quant_cuda rebuilt: its GGUF test now finds a python3 with NumPy). Run 304's
# test_kernels_cuda stopped at its 300 s limit on an H200 after 35 of 50 tests; the other 15
# here.
set -u
tar -xJf build/r304.tar.xz
source scripts/device/run_lib.sh
run_init run305 "${LIMIT:-300}"
B=build/r304
RUN_TEST_TIMEOUT=200 run_gtest t_kernels_rest $B/test_kernels_cuda --gtest_filter='CudaLinear.LinearSiluMulMatchesUnfused:CudaLinear.GemmSiluSm90MatchesReference:CudaLinear.LinearResidualNormMatchesUnfused:CudaLinear.LinearRopeKvWriteMatchesUnfused:CudaLinear.AutoRoutesEveryShape:CudaLinear.RejectsQuantizedAndNonBf16Weights:CudaSample.GreedyMatchesArgmax:CudaSample.GreedySplitRowsMatchArgmax:CudaSample.SeededDrawsMatchReferenceAndCpu:CudaSample.AllowOnlyRowsMatchReferenceAndCpu:CudaSample.CandidateAndRadixPathsAgreeWithReference:CudaSample.DrawsFollowTheDistribution:CudaSample.DeferredDrawsFeedDeviceTokens:CudaSample.RejectsBadBatches:CudaSample.LogSoftmaxMatchesReference'
RUN_TEST_TIMEOUT=60 run_gtest t_quant_gguf $B/test_quant_cuda --gtest_filter='QuantCuda.GgufBlocksMatchCpuExactPath'
run_done
