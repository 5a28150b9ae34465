#!/usr/bin/env bash
# Run 152 (session 22): the draw's per-row inputs in the sampling kernel's launch parameters
# (no upload kernel) and the first pass over a row in chunks of >= 2,048 entries (64 blocks
# for one 151,936-entry row instead of 19): every gpu suite that samples, the serve check, and
# the rows alternated against run 151's build (the 4-warp lm_head alone).
set -u
source scripts/device/run_lib.sh
run_init run152 "${LIMIT:-580}"
B=build/r152
run_gtest t_sample $B/test_kernels_cuda --gtest_filter='CudaSample*'
run_gtest t_engine $B/test_engine_gpu
run_gtest t_moe $B/test_moe_cuda
timeout 120 python3 tests/server/serve_async_check.py $B/tinyllm models/tiny-qwen2-demo --device cuda \
  > "$RUN_DIR/serve_async.log" 2>&1
run_log "serve_async rc=$? $(tail -1 "$RUN_DIR/serve_async.log")"
for r in 1 2 3; do
  run_bench r151 qwen2.5-0.5b s05_base_$r -b 1
  run_bench r152 qwen2.5-0.5b s05_new_$r -b 1
done
run_bench r151 qwen2.5-7b s7_base -b 1
run_bench r152 qwen2.5-7b s7_new -b 1
run_bench r152 qwen2.5-7b s7_int4 -b 1 --quantization int4 --quant-group-size 128
run_bench r152 qwen2.5-0.5b s05b8_new -b 8
run_trace 05_new $B/tinyllm qwen2.5-0.5b
RUN_TEST_TIMEOUT=200 run_gtest t_kernels $B/test_kernels_cuda --gtest_filter='-CudaLinear*:CudaSample*'
run_done
