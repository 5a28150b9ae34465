#!/usr/bin/env bash
# Run 236 (session 41, H200): the landed form of the session's prefill attention (build/r236:
# run 235's v2 with the warpgroups' ping-pong on by default, and the dispatch rule with the
# D 64 limit of 4 keys per query), against build/r234base (HEAD 5475d39): the CudaAttention
# tests (ping-pong on and off), the engine's HF goldens, the attention bench, and the engine's
# prefill rows (whole prompts, and a 0.5B prompt in 1,024-token chunks).
set -u
source scripts/device/run_lib.sh
run_init run236 "${LIMIT:-580}"
A=build/r234base
N=build/r236
RUN_TEST_TIMEOUT=150 run_gtest t_attn $N/test_kernels_cuda --gtest_filter='CudaAttention.*'
TLLM_ATTN_PINGPONG=0 RUN_TEST_TIMEOUT=120 run_gtest t_attn_serial $N/test_kernels_cuda \
  --gtest_filter='CudaAttention.Prefill*:CudaAttention.Mixed*:CudaAttention.SlidingWindow'
RUN_TEST_TIMEOUT=150 run_gtest t_engine $N/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
timeout 200 $N/bench_attention_cuda > "$RUN_DIR/attn_full.log" 2>&1
run_log "attn_full rc=$?"
grep SUMMARY "$RUN_DIR/attn_full.log"
for round in 1 2; do
  run_prefill 7b_base_$round $A/tinyllm qwen2.5-7b 4096
  run_prefill 7b_new_$round $N/tinyllm qwen2.5-7b 4096
  run_prefill 05b_base_$round $A/tinyllm qwen2.5-0.5b 4096
  run_prefill 05b_new_$round $N/tinyllm qwen2.5-0.5b 4096
done
run_prefill 05b_c1k_base $A/tinyllm qwen2.5-0.5b 4096 --max-num-batched-tokens 1024
run_prefill 05b_c1k_new $N/tinyllm qwen2.5-0.5b 4096 --max-num-batched-tokens 1024
run_prefill 7b_c1k_base $A/tinyllm qwen2.5-7b 4096 --max-num-batched-tokens 1024
run_prefill 7b_c1k_new $N/tinyllm qwen2.5-7b 4096 --max-num-batched-tokens 1024
run_prefill 7b16k_base $A/tinyllm qwen2.5-7b 16384
run_prefill 7b16k_new $N/tinyllm qwen2.5-7b 16384
run_done
