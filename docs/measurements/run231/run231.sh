#!/usr/bin/env bash
# Run 231 (session 40, H200): why run 230's clusters of two ran at 48% of the GEMM peak where
# single blocks ran at 77%. Hypothesis: the occupancy query allows fewer co-resident clusters
# than 66 (83 SMs busy would explain 1,793 -> 2,835 us). The log line prints it; then the
# cluster form with 60 / 66 clusters forced.
set -u
source scripts/device/run_lib.sh
run_init run231 "${LIMIT:-200}"
B=build/r231
for mc in 0 60 66; do
  TLLM_LOG=info TLLM_GEMM_SILU_CLUSTER=2 TLLM_GEMM_SILU_MAX_CLUSTERS=$mc timeout 60 $B/bench_gemm_silu_cuda --quick > "$RUN_DIR/cl2_mc$mc.log" 2>&1
  run_log "cl2 max_clusters=$mc rc=$?"
  grep -E "co-resident|mlp1" "$RUN_DIR/cl2_mc$mc.log" | cut -c1-220
done
TLLM_GEMM_SILU_CLUSTER=1 timeout 60 $B/bench_gemm_silu_cuda --quick > "$RUN_DIR/cl1.log" 2>&1
grep -E "mlp1" "$RUN_DIR/cl1.log" | cut -c1-220
run_done
