#!/usr/bin/env bash
# Run 197 (session 31): the dense MLP of a decode token as a dataflow between its two GEMVs
# (gemv.cu, gemv_mlp_flow_bf16: the down projection's warps wait for the act chunks they read,
# counted by the gate|up blocks, instead of the whole gate|up grid). Same binary, TLLM_MLP_FLOW=0
# (the two kernels one after the other, as before) against 1: the linear tests (the flow's bits
# against the two ops), the HF goldens, 7B / Qwen3-8B tg128 b1 alternated, and 7B timelines.
set -u
source scripts/device/run_lib.sh
run_init run197 "${LIMIT:-540}"
B=build/r197
RUN_TEST_TIMEOUT=150 run_gtest t_linear $B/test_kernels_cuda --gtest_filter='CudaLinear.*'
RUN_TEST_TIMEOUT=90 run_gtest t_engine $B/test_engine_gpu
for r in 1 2; do
  for f in 0 1; do
    TLLM_MLP_FLOW=$f run_bench r197 qwen2.5-7b 7b_b1_flow${f}_$r -b 1
  done
done
for f in 0 1; do
  TLLM_MLP_FLOW=$f run_bench r197 qwen3-8b q3_8b_b1_flow${f} -b 1
done
for f in 0 1; do
  TLLM_MLP_FLOW=$f run_trace 7b_flow$f $B/tinyllm qwen2.5-7b -b 1
  python3 scripts/dev/kernel_trace.py "$RUN_DIR/trace_7b_flow$f.csv" > "$RUN_DIR/trace_7b_flow$f.summary" 2>&1
  rm -f "$RUN_DIR/trace_7b_flow$f.csv"
done
run_done
