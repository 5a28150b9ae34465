#!/usr/bin/env bash
# Run 109: the q|k|v GEMV with RoPE + KV write in its epilogue (gemv.cu, ROPE). First the gpu
# suites (incl. what session 15 left unrun on a GPU: CudaSample's refused deferred batch,
# upload under capture, AsyncScheduling.EagerStepsGiveTheSynchronousResults), the serve
# check, then the fused path on / off in the same binary (TLLM_FUSED_ROPE), alternated.
set -u
source scripts/device/run_lib.sh
run_init run109 "${LIMIT:-580}"
B=build/r109
run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear*'
RUN_TEST_TIMEOUT=240 run_gtest t_kernels $B/test_kernels_cuda --gtest_filter='-CudaLinear*'
run_gtest t_engine $B/test_engine_gpu
run_gtest t_quant $B/test_quant_cuda
run_gtest t_moe $B/test_moe_cuda
timeout 200 python3 tests/server/serve_async_check.py $B/tinyllm models/tiny-qwen2-demo --device cuda \
  > "$RUN_DIR/serve_async.log" 2>&1
run_log "serve_async rc=$? $(tail -1 "$RUN_DIR/serve_async.log")"
for round in 1 2; do
  for f in 0 1; do
    TLLM_FUSED_ROPE=$f run_bench r109 qwen2.5-7b "s7_f${f}_$round" -b 1
  done
done
for f in 0 1; do
  TLLM_FUSED_ROPE=$f run_bench r109 qwen2.5-7b "s7b8_f$f" -b 8
  TLLM_FUSED_ROPE=$f run_bench r109 qwen2.5-0.5b "s05b8_f$f" -b 8
  TLLM_FUSED_ROPE=$f run_bench r109 qwen2.5-1.5b "s15b8_f$f" -b 8
done
TLLM_FUSED_ROPE=1 run_trace 7b_f1 $B/tinyllm qwen2.5-7b
TLLM_FUSED_ROPE=0 run_trace 7b_f0 $B/tinyllm qwen2.5-7b
run_done
