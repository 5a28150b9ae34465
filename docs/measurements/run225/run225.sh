#!/usr/bin/env bash
# Run 225 (session 39, H100): the q|k|v bias added by the prefill RoPE kernel instead of a pass
# of its own after cuBLASLt (run 224c: 62 us of each 7B layer's 4,096-token prefill).
# Prediction: 7B pp4096 -1.7 ms of ~100 (+1.7%), 0.5B pp4096 more (its bias pass is a larger
# share). Tests: CudaLinear.* (LinearRopeKvWriteMatchesUnfused now runs T = 33 / 65 through
# cuBLASLt with the bias in every rotation-kernel form, bit-equal to linear + the rotation),
# the CudaAttention rotation cases, test_engine_gpu (HF goldens of the Qwen2 test model, whose
# q|k|v has a bias). Then 7B and 0.5B pp4096, alternated against run 224's build.
set -u
source scripts/device/run_lib.sh
run_init run225 "${LIMIT:-400}"
B=build/r225
RUN_TEST_TIMEOUT=150 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.*:CudaAttention.QkNorm*:CudaAttention.RopeThenAttention*'
RUN_TEST_TIMEOUT=100 run_gtest t_engine_gpu $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
pp() {  # pp VARIANT MODEL LABEL
  timeout 120 build/$1/tinyllm bench --model bench/configs/$2 --load-format dummy --device cuda \
    --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 > "$RUN_DIR/$3.log" 2>&1
  run_log "$3 rc=$? $(grep -E '^\| pp' "$RUN_DIR/$3.log" | cut -c1-90 | paste -sd' ')"
}
for round in 1 2; do
  for v in r224 r225; do
    pp $v qwen2.5-7b 7b_pp4096_${v}_$round
    pp $v qwen2.5-0.5b 05b_pp4096_${v}_$round
  done
done
run_done
