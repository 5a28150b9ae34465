#!/usr/bin/env bash
# Run 288 (session 56): ncu (full set) of one 7B int4 g128 decode layer's four quantized GEMVs
# in the engine's graph (q|k|v with RoPE, o_proj + norm, gate|up + SiLU, down + norm): runs
# 279 and 286 refuted two guesses about what sets the o_proj / down kernels' pace (the busiest
# SM; x's L2 round trip per tile), so this records their stall reasons for the next attempt.
# Binary: run 287's (HEAD's kernels).
set -u
tar -xJf build/r287.tar.xz
source scripts/device/run_lib.sh
run_init run288 "${LIMIT:-230}"
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
run_log "ncu: $NCU"
# 113 quant_gemv launches per forward (28 x 4 + the int8 lm_head); skip prefill, warm-up and
# the first decode steps, then one layer's four.
timeout 200 "$NCU" --clock-control none --graph-profiling node --set full \
  --kernel-name regex:"quant_gemv_kernel" --launch-skip 904 --launch-count 4 \
  build/r287/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --max-model-len 2048 \
  -b 1 -p 16 -n 40 -r 1 --quantization int4 --quant-group-size 128 > "$RUN_DIR/ncu_7b_int4.txt" 2>&1
run_log "ncu rc=$? $(grep -c 'quant_gemv_kernel' "$RUN_DIR/ncu_7b_int4.txt") kernel lines"
grep -E "quant_gemv_kernel|Duration|DRAM Throughput|Achieved Occupancy|Warp Cycles Per Issued|Issued Ipc Active|No Eligible|Registers Per" \
  "$RUN_DIR/ncu_7b_int4.txt" | head -60
run_done
