#!/usr/bin/env bash
# Run 211 (session 34): the decoder stack kernel's cluster form (q|k|v, attention and o in one
# grid phase, a head per cluster of 8 blocks, DSMEM): CudaDecoderStack.* (both forms against
# the op-by-op layers), then tg128 batch 1 alternated plain (TLLM_STACK_CLUSTER=0) / cluster
# (1) / cluster launched cooperative (2) at 0.5B and 1.5B, and the phase timings of each form.
set -u
source scripts/device/run_lib.sh
run_init run211 "${LIMIT:-580}"
B=build/r211
RUN_TEST_TIMEOUT=200 run_gtest t_stack $B/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
for round in 1 2; do
  for c in 0 1 2; do
    TLLM_STACK_CLUSTER=$c run_bench r211 qwen2.5-0.5b 0.5b_c${c}_r$round -b 1
  done
done
for c in 0 1; do
  TLLM_STACK_CLUSTER=$c run_bench r211 qwen2.5-1.5b 1.5b_c${c} -b 1
done
for c in 0 1; do
  TLLM_STACK_CLUSTER=$c TLLM_STACK_TIMING=1 timeout 90 $B/tinyllm bench --model bench/configs/qwen2.5-0.5b \
    --load-format dummy --device cuda --max-model-len 4096 -b 1 -p 16 -n 300 -r 1 --enforce-eager \
    > "$RUN_DIR/timing_0.5b_c$c.log" 2>&1
  run_log "timing c$c rc=$? $(grep -E 'phases' "$RUN_DIR/timing_0.5b_c$c.log" | tail -1 | cut -c1-300)"
done
run_done
