#!/usr/bin/env bash
# Run 297 (session 58, H100): the quantized T = 1 GEMV with x from L1 in blocks of 12 warps,
# 2 per SM (80 registers, 2 k tiles in flight per lane; TLLM_QGEMV_W12=1) where the landed
# planner picks 8-warp blocks of one panel (7B o_proj and down): alone (--sweep-n), through
# test_quant_cuda and test_engine_gpu with it on, and tg128 b1 alternated in the engine.
set -u
tar -xJf build/r297.tar.xz
source scripts/device/run_lib.sh
run_init run297 "${LIMIT:-580}"
B=build/r297
for w in 0 1; do
  TLLM_QGEMV_W12=$w timeout 60 $B/bench_quant_cuda --sweep-n > "$RUN_DIR/sweep_w$w.log" 2>&1
  run_log "sweep w12=$w rc=$? $(grep -E 'kernels_int4_g128 (o_proj|down) l1 pb1' "$RUN_DIR/sweep_w$w.log" | cut -c1-90 | paste -sd' ')"
done
TLLM_QGEMV_W12=1 RUN_TEST_TIMEOUT=200 run_gtest t_quant_w12 $B/test_quant_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2; do
  for w in 0 1; do
    TLLM_QGEMV_W12=$w RUN_BENCH_TIMEOUT=60 run_bench r297 qwen2.5-7b 7b_int4_w${w}_$r -b 1 --quantization int4 --quant-group-size 128
  done
done
for m in qwen3-8b llama-3.1-8b; do
  for w in 0 1; do
    TLLM_QGEMV_W12=$w RUN_BENCH_TIMEOUT=60 run_bench r297 $m ${m}_int4_w$w -b 1 --quantization int4 --quant-group-size 128
  done
done
for w in 0 1; do
  TLLM_QGEMV_W12=$w RUN_BENCH_TIMEOUT=60 run_bench r297 qwen2.5-7b 7b_int8_w$w -b 1 --quantization int8
done
TLLM_QGEMV_W12=1 RUN_TEST_TIMEOUT=150 run_gtest t_engine_w12 $B/test_engine_gpu
run_done
