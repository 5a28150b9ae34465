#!/usr/bin/env bash
# Run 164 (session 24): the skinny GEMM at T = 8..32 (new: 4 token tiles for T > 16, x loaded
# a group ahead, 2-step groups) against cuBLASLt, at the 0.5B / 1.5B / 7B linears.
set -u
source scripts/device/run_lib.sh
run_init run164 "${LIMIT:-560}"
timeout 400 build/r164/bench_kernels_cuda --batch > $RUN_DIR/bk_batch.log 2>&1
run_log "bk rc=$?"
run_done
