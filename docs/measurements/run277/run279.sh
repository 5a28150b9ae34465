#!/usr/bin/env bash
# Run 279 (session 53). Run 278's sweep: the 7B down GEMV (x from L1, one panel per block)
# takes 12.4 us at 132 panels (one block per SM) and 14.7 at 224: a block's own chain, not the
# busiest SM's bytes, sets it. Its warps load x from L2 at every tile, after the codes arrive.
# Candidate: the staged kernel at the L1 kernel's residency (2 blocks per SM, 4 tiles in
# flight, x staged once in shared memory), so far built for 8-bit codes only; now for 4-bit
# too. (1) correctness: test_quant_cuda (every T = 1 kernel against the float64 reference,
# 4-bit deep included, the fused norm epilogue too); (2) each 7B shape
# through each kernel; (3) 7B int4 g128 tg b1, TLLM_QGEMV_DEEP4 = 0 / 1 / 3 alternated.
# Prediction: down 14.7 -> ~11 us alone if the x chain is the cost; o_proj level.
set -u
source scripts/device/run_lib.sh
run_init run279 "${LIMIT:-420}"
N=build/r279
RUN_TEST_TIMEOUT=120 run_gtest t_quant $N/test_quant_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
timeout 120 $N/bench_quant_cuda --sweep-n > "$RUN_DIR/sweep_n.log" 2>&1
run_log "sweep rc=$?"
grep -E '^kernels' "$RUN_DIR/sweep_n.log"
for r in 1 2; do
  for d in 0 1 3; do
    TLLM_QGEMV_DEEP4=$d RUN_BENCH_TIMEOUT=60 run_bench r279 qwen2.5-7b 7b_int4_d${d}_$r -b 1 --quantization int4 --quant-group-size 128
  done
done
run_done
