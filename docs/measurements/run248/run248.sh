#!/usr/bin/env bash
# Run 248 (session 46): the sm_90a grouped GEMM of the bf16 MoE experts (moe_gemm_sm90.cu, TMA +
# wgmma, 128-position units over moe_align's tiles, x gathered into expert order first):
#   test_moe_cuda (all, with Sm90GroupedGemmMatchesTheReferenceAndTheMmaKernel), the GemmSilu
#   tests of test_kernels_cuda (the shared TMA helper), test_engine_gpu (all);
#   bench_moe_cuda --quant-prefill (bf16 and the dequantized copy: mma against wgmma, T = 64..8192);
#   Qwen3-30B-A3B bf16 pp4096 and tg b1 / b32 / b128 with TLLM_MOE_GEMM=mma and the default.
set -u
source scripts/device/run_lib.sh
run_init run248 "${LIMIT:-590}"
N=build/r248
RUN_TEST_TIMEOUT=200 run_gtest t_moe $N/test_moe_cuda
grep -hE "^\[  FAILED|Failure|error" -A6 "$RUN_DIR"/t_moe.log | head -40
RUN_TEST_TIMEOUT=100 run_gtest t_silu $N/test_kernels_cuda --gtest_filter='*GemmSilu*'
timeout 150 $N/bench_moe_cuda --quant-prefill > "$RUN_DIR/moe_prefill.log" 2>&1
run_log "moe_prefill rc=$?"
grep -E "^   bf16 |dequant\+" "$RUN_DIR/moe_prefill.log" | cut -c1-80
m30() {  # m30 LABEL KERNEL BENCH_ARGS...
  local n=$1 kern=$2
  shift 2
  TLLM_MOE_GEMM=$kern timeout 170 $N/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
    --max-model-len 4160 -r 3 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/$n.log" | cut -c1-72 | paste -sd' ')"
}
m30 30b_mma mma -p 4096 -n 128 -b 1,32,128
m30 30b_wgmma auto -p 4096 -n 128 -b 1,32,128
RUN_TEST_TIMEOUT=200 run_gtest t_engine $N/test_engine_gpu
run_done
