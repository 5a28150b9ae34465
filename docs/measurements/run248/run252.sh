#!/usr/bin/env bash
# Run 252 (session 46): moe_align lists the 128-position units (meta.unit_tile), so the sm_90a
# grouped GEMM's persistent blocks walk units only (before, they walked 64-position tiles and
# skipped every other one, which left some blocks with more units than others); the wgmma k
# loop shared by gemm_silu_sm90 and moe_gemm_sm90 (wgmma_ring.cuh).
#   test_moe_cuda, test_engine_gpu, the GemmSilu tests; one bf16 30B-A3B layer at T = 64 / 512 /
#   2048 / 4096 / 8192 against run 250's bench binary; Qwen3-30B-A3B bf16 pp4096 and tg b128
#   against run 251's tinyllm.
set -u
source scripts/device/run_lib.sh
run_init run252 "${LIMIT:-500}"
N=build/r252
RUN_TEST_TIMEOUT=200 run_gtest t_moe $N/test_moe_cuda
RUN_TEST_TIMEOUT=100 run_gtest t_engine $N/test_engine_gpu
RUN_TEST_TIMEOUT=100 run_gtest t_silu $N/test_kernels_cuda --gtest_filter='*GemmSilu*'
grep -hE "^\[  FAILED|Failure" -A6 "$RUN_DIR"/t_*.log | head -30
for T in 64 512 2048 4096 8192; do
  for b in r252 r250; do
    echo "$b $(timeout 60 build/$b/bench_moe_cuda --quant-prefill --scheme bf16 --tokens $T 2>&1 | grep -E '^   bf16   wgmma' | cut -c1-60)"
  done
done | tee "$RUN_DIR/layers.log"
m30() {  # m30 LABEL BUILD
  timeout 150 build/$2/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
    --max-model-len 4160 -r 3 -p 4096 -n 128 -b 128 > "$RUN_DIR/$1.log" 2>&1
  run_log "$1 rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/$1.log" | cut -c1-60 | paste -sd' ')"
}
m30 30b_r252 r252
m30 30b_r251 r251
run_done
