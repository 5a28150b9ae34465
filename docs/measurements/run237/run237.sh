#!/usr/bin/env bash
# Run 237 (session 41, H200): the landed prefill attention (run 236's form) with
# TLLM_ATTN_SKIP_RESCALE=1 (a warp whose rows' maxima did not move skips O's 64 multiplies
# by 1.0: same bits) against without; and ncu of the landed kernel (ping-pong on) for the
# next step. Prediction: -2 to -4% off the kernel alone.
set -u
source scripts/device/run_lib.sh
run_init run237 "${LIMIT:-400}"
N=build/r237
TLLM_ATTN_SKIP_RESCALE=1 RUN_TEST_TIMEOUT=120 run_gtest t_attn_skip $N/test_kernels_cuda \
  --gtest_filter='CudaAttention.Prefill*:CudaAttention.Mixed*:CudaAttention.SlidingWindow'
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
for round in 1 2 3; do
  run_attn_quick def_$round $N
  TLLM_ATTN_SKIP_RESCALE=1 run_attn_quick skip_$round $N
done
for round in 1 2; do
  run_prefill 7b_def_$round $N/tinyllm qwen2.5-7b 4096
  TLLM_ATTN_SKIP_RESCALE=1 run_prefill 7b_skip_$round $N/tinyllm qwen2.5-7b 4096
  run_prefill 05b_def_$round $N/tinyllm qwen2.5-0.5b 4096
  TLLM_ATTN_SKIP_RESCALE=1 run_prefill 05b_skip_$round $N/tinyllm qwen2.5-0.5b 4096
done
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout 120 "$NCU" --set full --import-source no --kernel-name regex:attention_prefill_sm90 --launch-skip 1 --launch-count 1 \
  -o "$RUN_DIR/ncu_def" $N/bench_attention_cuda --quick > "$RUN_DIR/ncu_def.txt" 2>&1
run_log "ncu rc=$?"
"$NCU" --import "$RUN_DIR/ncu_def.ncu-rep" --page details > "$RUN_DIR/ncu_def_details.txt" 2>&1
"$NCU" --import "$RUN_DIR/ncu_def.ncu-rep" --page source --print-source sass --csv > "$RUN_DIR/ncu_def_sass.csv" 2>&1
xz -9 "$RUN_DIR/ncu_def_sass.csv"
rm -f "$RUN_DIR/ncu_def.ncu-rep"
grep -E "Duration|Issued Ipc|No Eligible|Warp Cycles Per Issued" "$RUN_DIR/ncu_def_details.txt" | head
run_done
