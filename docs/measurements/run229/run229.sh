#!/usr/bin/env bash
# Run 229 (session 40, H200): prefill's gate|up GEMM with the SiLU in its epilogue
# (gemm_silu_sm90.cu: TMA + wgmma.m64n256k16, persistent, 128 x 128 act tiles) against
# cuBLASLt gate|up + silu_mul. Count (7B, T = 4,096): the unfused pair moves 310 MB (gate|up
# write) + 465 MB (silu_mul) per layer; fused: 155 MB. Prediction: the fused kernel within
# 5% of cuBLASLt's gate|up alone; 7B pp4096 +1-3% if it is. Tests first (the kernel against
# the float reference and the unfused path; the engine's HF goldens with the fused path from
# T = 1), then bench_gemm_silu_cuda, then pp4096 alternated TLLM_GEMM_SILU=0 / 1.
set -u
source scripts/device/run_lib.sh
run_init run229 "${LIMIT:-560}"
B=build/r229
RUN_TEST_TIMEOUT=200 run_gtest t_kernels $B/test_kernels_cuda
RUN_TEST_TIMEOUT=100 run_gtest t_engine_gpu $B/test_engine_gpu
TLLM_GEMM_SILU_MIN_T=1 RUN_TEST_TIMEOUT=100 run_gtest t_engine_gpu_fused_all $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -40
timeout 120 $B/bench_gemm_silu_cuda > "$RUN_DIR/bench_gemm_silu.log" 2>&1
run_log "bench_gemm_silu rc=$?"
grep -E "CEILING|mlp1" "$RUN_DIR/bench_gemm_silu.log"
pp() {  # pp SWITCH MODEL LABEL
  TLLM_GEMM_SILU=$1 timeout 100 $B/tinyllm bench --model bench/configs/$2 --load-format dummy --device cuda \
    --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 > "$RUN_DIR/$3.log" 2>&1
  run_log "$3 rc=$? $(grep -E '^\| pp' "$RUN_DIR/$3.log" | cut -c1-90 | paste -sd' ')"
}
for round in 1 2; do
  for v in 0 1; do
    pp $v qwen2.5-7b 7b_pp4096_silu${v}_$round
    pp $v qwen2.5-0.5b 05b_pp4096_silu${v}_$round
  done
done
run_done
