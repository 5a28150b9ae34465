#!/usr/bin/env bash
# Run 150 (session 22): the logits' GEMV with a whole panel per warp (gemv.cu,
# gemv_warp_panel_kernel; TLLM_GEMV_WARP_PANELS=0/1 in the same binary).
set -u
source scripts/device/run_lib.sh
run_init run150 "${LIMIT:-590}"
B=build/r150
run_log "bench_kernels_cuda"
timeout 150 $B/bench_kernels_cuda --gemv 151936x896,151936x1536,151936x2048,152064x3584,9728x896 > "$RUN_DIR/bk_gemv.log" 2>&1
run_log "bk rc=$?"
run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.*'
for r in 1 2; do
  TLLM_GEMV_WARP_PANELS=0 run_bench r150 qwen2.5-0.5b s05_off_$r -b 1
  TLLM_GEMV_WARP_PANELS=1 run_bench r150 qwen2.5-0.5b s05_on_$r -b 1
done
TLLM_GEMV_WARP_PANELS=0 run_bench r150 qwen2.5-1.5b s15_off -b 1
TLLM_GEMV_WARP_PANELS=1 run_bench r150 qwen2.5-1.5b s15_on -b 1
TLLM_GEMV_WARP_PANELS=0 run_bench r150 qwen2.5-0.5b s05b8_off -b 8
TLLM_GEMV_WARP_PANELS=1 run_bench r150 qwen2.5-0.5b s05b8_on -b 8
TLLM_GEMV_WARP_PANELS=1 run_trace 05_on $B/tinyllm qwen2.5-0.5b
TLLM_GEMV_WARP_PANELS=0 run_trace 05_off $B/tinyllm qwen2.5-0.5b
run_bench r150 qwen2.5-7b s7_bf16 -b 1
run_done
