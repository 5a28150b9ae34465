#!/usr/bin/env bash
# Run 228 (session 39, H100): the residual add of prefill's o and down projections inside
# cuBLASLt (beta = 1, in place), so the norm after them reads one [T, H] tensor instead of two
# and writes one instead of two (run 224c: the add + RMSNorm took 38 us per call, twice per 7B
# layer at 4,096 tokens). Prediction: ~-18 us per call, 7B pp4096 +0.8-1%. Tests:
# CudaLinear.LinearResidualNorm* (the new path against the float reference; the tuner timing
# into scratch), the cuBLASLt cases, test_engine_gpu. Then 7B / 0.5B pp4096 alternated with
# run 226's binary (TLLM_ATTN_PINGPONG=0 there is the landed code before this change).
set -u
source scripts/device/run_lib.sh
run_init run228 "${LIMIT:-320}"
B=build/r228
RUN_TEST_TIMEOUT=120 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.LinearResidualNorm*:CudaLinear.Cublas*:CudaLinear.Autotuned*'
RUN_TEST_TIMEOUT=100 run_gtest t_engine_gpu $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
pp() {  # pp VARIANT MODEL LABEL
  TLLM_ATTN_PINGPONG=0 timeout 100 build/$1/tinyllm bench --model bench/configs/$2 --load-format dummy --device cuda \
    --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 > "$RUN_DIR/$3.log" 2>&1
  run_log "$3 rc=$? $(grep -E '^\| pp' "$RUN_DIR/$3.log" | cut -c1-90 | paste -sd' ')"
}
for round in 1 2; do
  for v in r226 r228; do
    pp $v qwen2.5-7b 7b_pp4096_${v}_$round
    pp $v qwen2.5-0.5b 05b_pp4096_${v}_$round
  done
done
run_done
