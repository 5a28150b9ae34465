#!/usr/bin/env bash
# Run 232 (session 40, H200): the landed form (gemm_silu_sm90 off by default, single blocks):
# the GEMM tests, the prefill attention (the sm_90a probe moved to device_caps.cu), the RoPE
# kernel's bias (rewritten with cuda_common's helpers), the engine's HF goldens.
set -u
source scripts/device/run_lib.sh
run_init run232 "${LIMIT:-300}"
B=build/r232
RUN_TEST_TIMEOUT=200 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.GemmSilu*:CudaLinear.LinearRopeKv*:CudaLinear.Cublas*:CudaAttention.Prefill*:CudaAttention.WgmmaPrefill*'
RUN_TEST_TIMEOUT=100 run_gtest t_engine_gpu $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
timeout 60 build/r232/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 > "$RUN_DIR/7b_pp4096.log" 2>&1
run_log "7b pp4096 $(grep -E '^\| pp' "$RUN_DIR/7b_pp4096.log" | cut -c1-90)"
run_done
