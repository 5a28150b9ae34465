#!/usr/bin/env bash
# Run 252 (session 46): run 251's build with the wgmma k loop shared by gemm_silu_sm90 and
# moe_gemm_sm90 (wgmma_ring.cuh): test_moe_cuda, the GemmSilu tests, bench_gemm_silu_cuda, one
# bf16 30B-A3B layer at T = 64 / 2048 / 4096, and Qwen3-30B-A3B bf16 pp4096 / tg b32.
set -u
source scripts/device/run_lib.sh
run_init run252 "${LIMIT:-400}"
N=build/r252
RUN_TEST_TIMEOUT=200 run_gtest t_moe $N/test_moe_cuda
RUN_TEST_TIMEOUT=100 run_gtest t_silu $N/test_kernels_cuda --gtest_filter='*GemmSilu*'
grep -hE "^\[  FAILED|Failure" -A6 "$RUN_DIR"/t_moe.log "$RUN_DIR"/t_silu.log | head -30
timeout 60 $N/bench_gemm_silu_cuda > "$RUN_DIR/gemm_silu.log" 2>&1
run_log "gemm_silu rc=$?"
tail -12 "$RUN_DIR/gemm_silu.log" | cut -c1-110
for T in 64 2048 4096; do
  timeout 60 $N/bench_moe_cuda --quant-prefill --scheme bf16 --tokens $T 2>&1 | grep -E "^   bf16" | cut -c1-60
done
timeout 150 $N/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
  --max-model-len 4160 -r 3 -p 4096 -n 128 -b 32 > "$RUN_DIR/30b.log" 2>&1
run_log "30b rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/30b.log" | cut -c1-60 | paste -sd' ')"
run_done
