#!/usr/bin/env bash
# Run 275 (session 51): the tests of test_kernels_cuda and test_moe_cuda that run 274's
# limits cut (38 of 50 and 14 of 19 had passed), same binaries (e13045c).
set -u
source scripts/device/run_lib.sh
run_init run275 "${LIMIT:-400}"
N=build/r274
RUN_TEST_TIMEOUT=200 run_gtest t_kernels_rest $N/test_kernels_cuda --gtest_filter='CudaLinear.LinearRopeKvWriteMatchesUnfused:CudaLinear.AutoRoutesEveryShape:CudaLinear.RejectsQuantizedAndNonBf16Weights:CudaSample.GreedyMatchesArgmax:CudaSample.GreedySplitRowsMatchArgmax:CudaSample.SeededDrawsMatchReferenceAndCpu:CudaSample.AllowOnlyRowsMatchReferenceAndCpu:CudaSample.CandidateAndRadixPathsAgreeWithReference:CudaSample.DrawsFollowTheDistribution:CudaSample.DeferredDrawsFeedDeviceTokens:CudaSample.RejectsBadBatches:CudaSample.LogSoftmaxMatchesReference'
RUN_TEST_TIMEOUT=150 run_gtest t_moe_rest $N/test_moe_cuda --gtest_filter='MoeBlockCuda.FusedBlockAtRealLayerSizes:MoeBlockCuda.RouterTiesGoToTheLowerExpertId:MoeBlockCuda.FusedRouterMatchesMoeRouteBitForBitWithTiesAndNaN:MoeBlockCuda.FusedAgreesWithUnfusedAndIsDeterministic:MoeBlockCuda.CapturedGraphOfSeveralBlocksReplays'
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -30
grep -hE "OK \]" "$RUN_DIR"/t_*.log
run_done
