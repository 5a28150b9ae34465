#!/usr/bin/env bash
# Run 154 (session 22): the draw's kernels, the small uploads and the feed launched with PDL
# (each triggers its dependents at entry and waits before it reads or writes): the suites
# that sample or upload, the serve check, and the rows alternated against run 153's build.
set -u
source scripts/device/run_lib.sh
run_init run154 "${LIMIT:-560}"
B=build/r154
run_gtest t_sample $B/test_kernels_cuda --gtest_filter='CudaSample*:CudaBackendTest*:CudaDecoderStack*'
run_gtest t_engine $B/test_engine_gpu
run_gtest t_moe $B/test_moe_cuda
run_gtest t_quant $B/test_quant_cuda
timeout 120 python3 tests/server/serve_async_check.py $B/tinyllm models/tiny-qwen2-demo --device cuda \
  > "$RUN_DIR/serve_async.log" 2>&1
run_log "serve_async rc=$? $(tail -1 "$RUN_DIR/serve_async.log")"
for r in 1 2 3; do
  run_bench r153 qwen2.5-0.5b s05_base_$r -b 1
  run_bench r154 qwen2.5-0.5b s05_new_$r -b 1
done
run_bench r153 qwen2.5-7b s7_base -b 1
run_bench r154 qwen2.5-7b s7_new -b 1
run_bench r154 qwen2.5-0.5b s05b8_new -b 8
run_trace 05_new $B/tinyllm qwen2.5-0.5b
RUN_TEST_TIMEOUT=200 run_gtest t_kernels $B/test_kernels_cuda --gtest_filter='-CudaSample*:CudaBackendTest*:CudaDecoderStack*'
run_done
