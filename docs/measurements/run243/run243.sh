#!/usr/bin/env bash
# Run 243 (session 44): the rows run 242 left (same binaries, build/r242): Qwen3-8B shape
# (Qwen/Qwen3-8B-FP8's) tg b1 in fp8 and bf16, and the Qwen3-30B-A3B fp8 prefill of 2,048
# tokens that timed out behind its on-load quantization.
set -u
source scripts/device/run_lib.sh
run_init run243 "${LIMIT:-420}"
N=build/r242
RUN_BENCH_TIMEOUT=100 run_bench r242 qwen3-8b q3_8b_fp8_tg -b 1 --quantization fp8
RUN_BENCH_TIMEOUT=60 run_bench r242 qwen3-8b q3_8b_bf16_tg -b 1
RUN_BENCH_TIMEOUT=240 run_prefill 30b_fp8_pp2048 $N/tinyllm qwen3-30b-a3b 2048 --quantization fp8
run_done
