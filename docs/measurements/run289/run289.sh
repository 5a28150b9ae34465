#!/usr/bin/env bash
# Run 289 (session 57): the L2 hint of the quantized o projection (GemvL2Ahead): after its
# griddepcontrol.wait the o + norm GEMV's blocks request the leading k tiles of every warp
# range of the gate|up GEMV's first wave into L2 (cp.async.bulk.prefetch), while its own
# chain (codes already in registers) leaves DRAM idle. test_quant_cuda (the hint changes no
# bit; with TLLM_L2_AHEAD_MB=16 the model tests take it through the backend), the engine
# tests with it on, and 7B int4 g128 / int8 tg128 b1 at TLLM_L2_AHEAD_MB = 0 / 8 / 16 / 32
# (and 16 issued before the wait), alternated.
set -u
tar -xJf build/r289.tar.xz
source scripts/device/run_lib.sh
run_init run289 "${LIMIT:-420}"
B=build/r289
TLLM_L2_AHEAD_MB=16 RUN_TEST_TIMEOUT=110 run_gtest t_quant $B/test_quant_cuda
TLLM_L2_AHEAD_MB=16 RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2; do
  for mb in 0 8 16 32; do
    TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=60 run_bench r289 qwen2.5-7b 7b_int4_l2_${mb}_$r -b 1 --quantization int4 --quant-group-size 128
  done
  [ $r = 1 ] && TLLM_L2_AHEAD_MB=16 TLLM_L2_AHEAD_EARLY=1 RUN_BENCH_TIMEOUT=60 run_bench r289 qwen2.5-7b 7b_int4_l2_16early_$r -b 1 --quantization int4 --quant-group-size 128
done
for mb in 0 16; do
  TLLM_L2_AHEAD_MB=$mb RUN_BENCH_TIMEOUT=70 run_bench r289 qwen2.5-7b 7b_int8_l2_${mb} -b 1 --quantization int8
done
run_done
