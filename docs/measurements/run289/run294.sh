#!/usr/bin/env bash
# Run 294 (session 57): the launcher's shared-memory opt-in counted without the kernel's
# static arrays: the x-staged kernel at K = 9,344 (f16 scales in groups of 32, one panel per
# block) asks for 49,104 bytes of dynamic memory, under 48 KB alone but not with the ~1.7 KB
# static beside it. The new case of QuantCuda.SkinnyGemmLargeStagedScales against HEAD's
# launcher (test_quant_cuda_nofix: expected to fail) and the fixed one, then the whole suite.
set -u
tar -xJf build/r294.tar.xz
source scripts/device/run_lib.sh
run_init run294 "${LIMIT:-200}"
B=build/r294
RUN_TEST_TIMEOUT=40 run_gtest t_nofix $B/test_quant_cuda_nofix --gtest_filter='QuantCuda.SkinnyGemmLargeStagedScales'
grep -hE "Failure|exception" -A2 "$RUN_DIR"/t_nofix.log | head -6
RUN_TEST_TIMEOUT=110 run_gtest t_quant $B/test_quant_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_quant.log | head -20
run_done
