#!/usr/bin/env bash
# Run 238 (session 41, H200): the wgmma prefill attention splits the keys where its grid is
# below one wave (as many parts as fill it, at most the generic kernel's count; the generic
# combine kernel merges), and takes every prefill-heavy launch on sm_90 (run 236's rule took
# it unsplit from a third of the SMs up to 8,192 keys, D 64 up to 4 keys per query). Against
# build/r236 (run 236's landed form). Prediction: 0.5B heads, 256 tokens on 8,192 keys 136 ->
# ~40 us (generic 73); cases that fill a wave unchanged.
set -u
source scripts/device/run_lib.sh
run_init run238 "${LIMIT:-400}"
O=build/r236
N=build/r238
RUN_TEST_TIMEOUT=150 run_gtest t_attn $N/test_kernels_cuda --gtest_filter='CudaAttention.*'
RUN_TEST_TIMEOUT=150 run_gtest t_engine $N/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
timeout 200 $N/bench_attention_cuda > "$RUN_DIR/attn_full.log" 2>&1
run_log "attn_full rc=$?"
grep SUMMARY "$RUN_DIR/attn_full.log"
run_prefill 05b_c512_old $O/tinyllm qwen2.5-0.5b 8192 --max-num-batched-tokens 512
run_prefill 05b_c512_new $N/tinyllm qwen2.5-0.5b 8192 --max-num-batched-tokens 512
run_prefill 7b_c512_old $O/tinyllm qwen2.5-7b 8192 --max-num-batched-tokens 512
run_prefill 7b_c512_new $N/tinyllm qwen2.5-7b 8192 --max-num-batched-tokens 512
run_prefill 05b_c2k_old $O/tinyllm qwen2.5-0.5b 16384 --max-num-batched-tokens 2048
run_prefill 05b_c2k_new $N/tinyllm qwen2.5-0.5b 16384 --max-num-batched-tokens 2048
run_prefill 7b_old $O/tinyllm qwen2.5-7b 4096
run_prefill 7b_new $N/tinyllm qwen2.5-7b 4096
run_done
