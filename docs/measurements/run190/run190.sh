#!/usr/bin/env bash
# Run 190 (session 28): the rope kernel's block-per-token form (qk_norm_rope_kv_write.cu,
# rope_token_kernel) against the warp-per-head kernel, same binary (TLLM_ROPE_TOKEN_BLOCKS=0/1):
# the attention / rope / decoder-stack kernel tests, the HF goldens, and 7B / 0.5B pp4096.
set -u
source scripts/device/run_lib.sh
run_init run190 "${LIMIT:-400}"
B=build/r190
RUN_TEST_TIMEOUT=200 run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention.*:CudaLinear.LinearRopeKvWrite*:CudaDecoderStack.*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
pp() {
  local n=$1 m=$2
  shift 2
  timeout 120 env "$@" $B/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda \
    -p 4096 -n 16 -b 1 -r 3 --max-model-len 8192 > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E 'limits measured|^\| pp' "$RUN_DIR/$n.log" | cut -c1-90 | paste -sd' ')"
}
for r in 1 2; do
  pp 7b_pp4096_off_$r qwen2.5-7b TLLM_ROPE_TOKEN_BLOCKS=0
  pp 7b_pp4096_on_$r qwen2.5-7b TLLM_ROPE_TOKEN_BLOCKS=1
done
pp 05_pp4096_off qwen2.5-0.5b TLLM_ROPE_TOKEN_BLOCKS=0
pp 05_pp4096_on qwen2.5-0.5b TLLM_ROPE_TOKEN_BLOCKS=1
run_done
