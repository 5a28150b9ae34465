#!/usr/bin/env bash
# Run 175 (session 26): (1) the skinny GEMM with 2 / 4 row tiles per warp above 16 tokens
# (x fragments shared across the tiles: half / a quarter of the L2 traffic of x), kernel
# table against cuBLASLt and the engine at b32 with TLLM_GEMV_WIDE="W,U,MT,MIN" for the
# matrices cuBLASLt takes today (> 8 M weights); the knob's paths under the linear tests.
# (2) session 25's unmeasured norm patch (rows wider than 1,024 at T = 2..4 normalised by
# groups of threads side by side): its tests and 1.5B / 7B b2 / b4 rows against HEAD.
set -u
source scripts/device/run_lib.sh
run_init run175 "${LIMIT:-580}"
B=build/r175
timeout 60 $B/bench_kernels_cuda --batch > $RUN_DIR/bk_batch.log 2>&1
run_log "bk rc=$?"
BIG=8388609
for k in 8,2,2 4,2,2 4,1,4; do
  TLLM_GEMV_WIDE=$k,0 RUN_TEST_TIMEOUT=100 run_gtest t_wide_${k//,/_} $B/test_kernels_cuda \
    --gtest_filter='CudaLinear.SkinnyGemm*:CudaLinear.LinearSilu*'
done
for m in qwen2.5-0.5b qwen2.5-1.5b qwen2.5-7b; do
  run_bench r175base $m ${m}_b32_base -b 32
  run_bench r175 $m ${m}_b32_off -b 32
  for k in 8,2,2 4,2,2 4,1,4; do TLLM_GEMV_WIDE=$k,$BIG run_bench r175 $m ${m}_b32_w${k//,/_} -b 32; done
done
for m in qwen2.5-1.5b qwen2.5-7b; do
  for b in 2 4; do
    for v in r175base r175; do run_bench $v $m ${m}_b${b}_$v -b $b; done
  done
done
for v in r175base r175; do run_bench $v qwen2.5-7b 7b_int4_b4_$v -b 4 --quantization int4 --quant-group-size 128; done
RUN_TEST_TIMEOUT=60 run_gtest t_norm $B/test_kernels_cuda --gtest_filter='CudaLinear.LinearResidualNorm*'
RUN_TEST_TIMEOUT=60 run_gtest t_quant $B/test_quant_cuda
for m in qwen2.5-1.5b qwen2.5-7b; do
  for v in r175base r175; do run_bench $v $m ${m}_b24_$v -b 24; done
  TLLM_GEMV_WIDE=8,2,2,$BIG run_bench r175 $m ${m}_b24_w8_2_2 -b 24
done
run_done
