#!/usr/bin/env bash
# Run 287 (session 56): run 286's bench_quant_cuda on an H100 had the T = 1 gate|up GEMV
# (x-staged kernel, 3 blocks per SM) faster at 2 panels per block (1,184 blocks, 2.99 waves
# of 396) than at the 4 the launcher picks (592 blocks, 1.49 waves): 26.8 against 28.7-28.9
# us alone (H200 run 85: 23.7 against 22.6). In the engine: 7B int4 g128 and int8 tg b1 with
# the SiLU GEMV's panels per block forced by TLLM_QGEMV_SILU_PB (0 = the launcher's 4; a one-line
# switch in CudaBackend::linear_quantized_fused for this run, not kept).
set -u
tar -xJf build/r287.tar.xz
source scripts/device/run_lib.sh
run_init run287 "${LIMIT:-250}"
for r in 1 2; do
  for pb in 0 2 8; do
    TLLM_QGEMV_SILU_PB=$pb RUN_BENCH_TIMEOUT=45 run_bench r287 qwen2.5-7b 7b_int4_pb${pb}_$r -b 1 --quantization int4 --quant-group-size 128
  done
done
for pb in 0 2; do
  TLLM_QGEMV_SILU_PB=$pb RUN_BENCH_TIMEOUT=45 run_bench r287 qwen2.5-7b 7b_int8_pb${pb} -b 1 --quantization int8
done
run_done
