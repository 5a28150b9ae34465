#!/usr/bin/env bash
# Run 281 (session 55): the issues' three open GPU rows on an H100 with the landed build
# (57936e6): 7B bf16 pp4096 (session 41's prefill attention, never measured on an H100),
# 0.5B bf16 tg128 b1, 7B int4 g128 tg128 b1; the 7B bf16 b1 row; on the same card, pp4096 with
# our wgmma GEMM + SiLU epilogue (TLLM_GEMM_SILU=1: level on the H200, but it moves 465 MB
# less DRAM per layer, and the H100's prefill runs at its power cap, run 227) and without the
# attention's ping-pong (lost on an H100 in run 226, before session 41's producer); a kernel
# timeline of 0.5B b1; the HF transformers peer line of 7B pp4096; test_engine_gpu.
set -u
tar -xJf build/r281.tar.xz
source scripts/device/run_lib.sh
run_init run281 "${LIMIT:-580}"
N=build/r281
for r in 1 2; do
  RUN_BENCH_TIMEOUT=60 run_prefill 7b_pp4096_$r $N/tinyllm qwen2.5-7b 4096
  TLLM_GEMM_SILU=1 RUN_BENCH_TIMEOUT=60 run_prefill 7b_pp4096_silu_$r $N/tinyllm qwen2.5-7b 4096
  TLLM_ATTN_PINGPONG=0 RUN_BENCH_TIMEOUT=60 run_prefill 7b_pp4096_nopp_$r $N/tinyllm qwen2.5-7b 4096
  RUN_BENCH_TIMEOUT=30 run_bench r281 qwen2.5-0.5b 05b_b1_$r -b 1
  RUN_BENCH_TIMEOUT=100 run_bench r281 qwen2.5-7b 7b_int4_b1_$r -b 1 --quantization int4 --quant-group-size 128
done
RUN_BENCH_TIMEOUT=60 run_prefill 7b_pp4096_3 $N/tinyllm qwen2.5-7b 4096
RUN_BENCH_TIMEOUT=60 run_bench r281 qwen2.5-7b 7b_b1 -b 1
RUN_BENCH_TIMEOUT=40 run_trace 05b_b1 $N/tinyllm qwen2.5-0.5b
timeout 150 python3 scripts/device/hf_peer.py bench/configs/qwen2.5-7b --prefill 4096 --gen 16 > "$RUN_DIR/hf_peer_7b.log" 2>&1
run_log "hf_peer rc=$? $(tail -1 "$RUN_DIR/hf_peer_7b.log")"
RUN_TEST_TIMEOUT=150 run_gtest t_engine $N/test_engine_gpu
run_done
