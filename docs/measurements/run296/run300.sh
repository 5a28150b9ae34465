#!/usr/bin/env bash
# Run 300 (session 58, H100): cuBLASLt without a workspace (TLLM_GEMM_WORKSPACE_MB=0 in an
# experiment build whose LtMatmul read its workspace size from that variable; what landed is
# TLLM_GEMM_NO_WORKSPACE_MIN_T) against the landed 32 MB: run 296's timeline has a 4-byte memset before each of
# the 112 GEMMs of a 7B 4,096-token prefill (~3 us each with its gaps). Without a workspace
# the heuristic cannot offer algorithms that need one. 7B pp4096 alternated x3, 0.5B x2, and
# a kernel timeline of each (scripts/dev/kernel_trace.py --eager).
set -u
tar -xJf build/r300.tar.xz
source scripts/device/run_lib.sh
run_init run300 "${LIMIT:-400}"
B=build/r300
for r in 1 2 3; do
  for ws in 32 0; do
    TLLM_GEMM_WORKSPACE_MB=$ws RUN_BENCH_TIMEOUT=40 run_prefill 7b_pp4096_ws${ws}_$r $B/tinyllm qwen2.5-7b 4096
  done
done
for r in 1 2; do
  for ws in 32 0; do
    TLLM_GEMM_WORKSPACE_MB=$ws RUN_BENCH_TIMEOUT=30 run_prefill 05b_pp4096_ws${ws}_$r $B/tinyllm qwen2.5-0.5b 4096
  done
done
for ws in 32 0; do
  TLLM_GEMM_WORKSPACE_MB=$ws CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$RUN_DIR/trace_ws$ws.csv \
    timeout 60 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    --max-model-len 8192 -p 4096 -n 1 -b 1 -r 2 > "$RUN_DIR/trace_ws$ws.log" 2>&1
  python3 scripts/dev/kernel_trace.py "$RUN_DIR/trace_ws$ws.csv" --eager > "$RUN_DIR/trace_ws$ws.summary" 2>&1
  run_log "trace ws=$ws $(grep -E '^\| pp' "$RUN_DIR/trace_ws$ws.log" | cut -c1-90) $(sed -n 2p "$RUN_DIR/trace_ws$ws.summary")"
  rm -f "$RUN_DIR/trace_ws$ws.csv"
done
run_done
