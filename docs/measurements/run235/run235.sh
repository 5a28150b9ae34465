#!/usr/bin/env bash
# Run 235 (session 41, H200): the wgmma prefill attention, second version (build/r235v2):
# run 234's decoupled producer (build/r234new = v1) plus the row max / sum of the softmax in
# 4 chains per row, ring counters instead of j % 3, one proxy fence per step, setmaxnreg for
# both tile widths; and the dispatch: launches below 3 waves take the wgmma kernel unsplit
# from a third of the SMs up to 8,192 keys (was: the generic kernel with split keys).
# Base: build/r234base (HEAD 5475d39). Prediction: v2 7B T=4096 alone 325 -> 290-305 us;
# a 0.5B 4,096-token prompt in 1,024-token chunks +5-10% (its chunks' attention moves off
# the split generic kernel).
set -u
source scripts/device/run_lib.sh
run_init run235 "${LIMIT:-580}"
A=build/r234base
V1=build/r234new
N=build/r235v2
RUN_TEST_TIMEOUT=150 run_gtest t_attn $N/test_kernels_cuda --gtest_filter='CudaAttention.*'
TLLM_ATTN_PINGPONG=1 RUN_TEST_TIMEOUT=120 run_gtest t_attn_pp $N/test_kernels_cuda \
  --gtest_filter='CudaAttention.Prefill*:CudaAttention.Mixed*:CudaAttention.SlidingWindow'
RUN_TEST_TIMEOUT=150 run_gtest t_engine $N/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
for round in 1 2; do
  run_attn_quick base_$round $A
  run_attn_quick v1_$round $V1
  run_attn_quick v2_$round $N
  TLLM_ATTN_PINGPONG=1 run_attn_quick v2pp_$round $N
done
timeout 200 $N/bench_attention_cuda > "$RUN_DIR/attn_v2_full.log" 2>&1
run_log "attn_v2_full rc=$?"
grep SUMMARY "$RUN_DIR/attn_v2_full.log"
TLLM_ATTN_SM90_BN=128 timeout 200 $N/bench_attention_cuda > "$RUN_DIR/attn_v2_full_bn128.log" 2>&1
run_log "attn_v2_full_bn128 rc=$?"
for round in 1 2; do
  run_prefill 7b_base_$round $A/tinyllm qwen2.5-7b 4096
  run_prefill 7b_v2_$round $N/tinyllm qwen2.5-7b 4096
  TLLM_ATTN_PINGPONG=1 run_prefill 7b_v2pp_$round $N/tinyllm qwen2.5-7b 4096
  run_prefill 05b_base_$round $A/tinyllm qwen2.5-0.5b 4096
  run_prefill 05b_v2_$round $N/tinyllm qwen2.5-0.5b 4096
  TLLM_ATTN_PINGPONG=1 run_prefill 05b_v2pp_$round $N/tinyllm qwen2.5-0.5b 4096
  run_prefill 05b_c1k_base_$round $A/tinyllm qwen2.5-0.5b 4096 --max-num-batched-tokens 1024
  run_prefill 05b_c1k_v2_$round $N/tinyllm qwen2.5-0.5b 4096 --max-num-batched-tokens 1024
done
run_prefill 7b16k_base $A/tinyllm qwen2.5-7b 16384
run_prefill 7b16k_v2 $N/tinyllm qwen2.5-7b 16384
TLLM_ATTN_PINGPONG=1 run_prefill 7b16k_v2pp $N/tinyllm qwen2.5-7b 16384
run_prefill 7b_c2k_base $A/tinyllm qwen2.5-7b 8192 --max-num-batched-tokens 2048
run_prefill 7b_c2k_v2 $N/tinyllm qwen2.5-7b 8192 --max-num-batched-tokens 2048
run_done
