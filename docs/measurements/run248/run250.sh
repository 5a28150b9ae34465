#!/usr/bin/env bash
# Run 250 (session 46): where the sm_90a grouped GEMM should replace the decode kernels of bf16
# experts. bench_moe_cuda's block rows (fused decode block against the 3-op sequence, T = 1..32)
# with the default paths and with TLLM_MOE_GEMM=wgmma; the bf16 --quant-prefill rows (auto / mma /
# wgmma at T = 1..32); Qwen3-30B-A3B bf16 tg b4 / b8 / b16 / b32 with the default paths and with
# TLLM_MOE_GEMM=wgmma (no fused block, the experts through wgmma at every batch above 1).
set -u
source scripts/device/run_lib.sh
run_init run250 "${LIMIT:-590}"
N=build/r250
timeout 120 $N/bench_moe_cuda > "$RUN_DIR/block_auto.log" 2>&1
run_log "block_auto rc=$?"
TLLM_MOE_GEMM=wgmma timeout 120 $N/bench_moe_cuda > "$RUN_DIR/block_wgmma.log" 2>&1
run_log "block_wgmma rc=$?"
grep -E "^==|^-- T|call|graph" "$RUN_DIR/block_auto.log" | cut -c1-100 | head -80
grep -E "^==|^-- T|call|graph" "$RUN_DIR/block_wgmma.log" | cut -c1-100 | head -80
for T in 1 2 4 8 12 16 24 32; do
  timeout 60 $N/bench_moe_cuda --quant-prefill --scheme bf16 --tokens $T 2>&1 | grep -E "^   bf16" | cut -c1-60
done
m30() {  # m30 LABEL KERNEL BENCH_ARGS...
  local n=$1 kern=$2
  shift 2
  TLLM_MOE_GEMM=$kern timeout 150 $N/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
    --max-model-len 4160 -r 3 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/$n.log" | cut -c1-60 | paste -sd' ')"
}
m30 30b_auto auto -p 16 -n 128 -b 2,4,8,16,32
m30 30b_wgmma wgmma -p 16 -n 128 -b 2,4,8,16,32
run_done
