#!/usr/bin/env bash
# Run 251 (session 46), the build to land: bf16 experts on Hopper take the decode kernels and the
# fused block up to 8 tokens and the sm_90a grouped GEMM above; quantized experts dequantize from
# 256 pairs per expert there.
#   test_moe_cuda, test_engine_gpu (all), test_kernels_cuda's GemmSilu tests;
#   Qwen3-30B-A3B bf16 pp4096 and tg b1 / b8 / b16 / b32 / b128;
#   Qwen1.5-MoE-A2.7B bf16 the same, also with TLLM_MOE_GEMM=decode (tg: the kernels before this
#   session) and TLLM_MOE_GEMM=mma (pp: the grouped GEMM before this session).
set -u
source scripts/device/run_lib.sh
run_init run251 "${LIMIT:-590}"
N=build/r251
RUN_TEST_TIMEOUT=200 run_gtest t_moe $N/test_moe_cuda
grep -hE "^\[  FAILED|Failure|error" -A6 "$RUN_DIR"/t_moe.log | head -40
RUN_TEST_TIMEOUT=200 run_gtest t_engine $N/test_engine_gpu
RUN_TEST_TIMEOUT=100 run_gtest t_silu $N/test_kernels_cuda --gtest_filter='*GemmSilu*'
grep -hE "^\[  FAILED|Failure" -A6 "$RUN_DIR"/t_engine.log "$RUN_DIR"/t_silu.log | head -20
mb() {  # mb LABEL MODEL KERNEL BENCH_ARGS...
  local n=$1 m=$2 kern=$3
  shift 3
  TLLM_MOE_GEMM=$kern timeout 150 $N/tinyllm bench --model bench/configs/$m --load-format dummy --device cuda \
    --max-model-len 4160 -r 3 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/$n.log" | cut -c1-60 | paste -sd' ')"
}
mb 30b qwen3-30b-a3b auto -p 4096 -n 128 -b 1,8,16,32,128
mb a27b qwen1.5-moe-a2.7b auto -p 4096 -n 128 -b 1,8,16,32,128
mb a27b_decode qwen1.5-moe-a2.7b decode -p 16 -n 128 -b 8,16,32
mb a27b_mma qwen1.5-moe-a2.7b mma -p 4096 -n 16 -b 1
run_done
