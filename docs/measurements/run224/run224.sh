#!/usr/bin/env bash
# Run 224 (session 39). The first device call on an H100 in many sessions: the issues'
# target rows were written for an H100 ("~3.0 TB/s"), and every ratio since session 2 was
# measured on an H200. This call: the quantized suites on this session's code (the MoE
# GEMV's scale groups by a counter, quant::GroupWalk, landed untested in session 38), then
# every target row of the CUDA, MoE and quantization issues on this card, then one round of
# the Qwen3-30B-A3B int4 g128 decode against the build before GroupWalk (r224a = run 223's).
# Prediction for GroupWalk (H200 terms): 30B-A3B int4 tg b1 ~308 -> ~370 tok/s.
set -u
source scripts/device/run_lib.sh
run_init run224 "${LIMIT:-570}"
B=build/r224
RUN_TEST_TIMEOUT=150 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=150 run_gtest t_quant $B/test_quant_cuda
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
run_bench r224 qwen2.5-0.5b 05b_b1 -b 1
run_bench r224 qwen2.5-7b 7b_b1 -b 1
timeout 120 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 > "$RUN_DIR/7b_pp4096.log" 2>&1
run_log "7b_pp4096 rc=$? $(grep -E '^\| pp' "$RUN_DIR/7b_pp4096.log" | cut -c1-90 | paste -sd' ')"
RUN_BENCH_TIMEOUT=150 run_bench r224 qwen3-30b-a3b 30b_bf16_b1 -b 1
RUN_BENCH_TIMEOUT=120 run_bench r224 qwen2.5-7b 7b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
timeout 150 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 --quantization int4 --quant-group-size 128 > "$RUN_DIR/7b_int4_pp4096.log" 2>&1
run_log "7b_int4_pp4096 rc=$? $(grep -E '^\| pp|GEMM' "$RUN_DIR/7b_int4_pp4096.log" | cut -c1-110 | paste -sd' ')"
RUN_BENCH_TIMEOUT=120 run_bench r224 qwen2.5-7b 7b_int8_b1 -b 1 --quantization int8
for v in r224a r224; do
  RUN_BENCH_TIMEOUT=150 run_bench $v qwen3-30b-a3b 30b_int4_${v}_1 -b 1 --quantization int4 --quant-group-size 128
done
run_done
