#!/usr/bin/env bash
# Run 223 (session 38): why the quantized MoE decode kernels run at 15-25% of the copy rate.
# ncu (full set: speed of light, memory, warp states, source counters) of the router and the
# two expert kernels of a Qwen3-30B-A3B int4 g128 decode step, each alone; then the issue rows
# not re-measured since sessions 32-36 (7B int4 / int8, 30B-A3B bf16 tg b1).
set -u
source scripts/device/run_lib.sh
run_init run223 "${LIMIT:-570}"
B=build/r223
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
run_log "ncu: $NCU"
# 48 layers x 3 matching kernels a step; skip prefill, warm-up and the first decode steps.
timeout 240 "$NCU" --clock-control none --graph-profiling node --set full \
  --kernel-name regex:"moe_quant_gemv|moe_router_topk" --launch-skip 1500 --launch-count 6 \
  $B/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda --max-model-len 2048 \
  -b 1 -p 16 -n 40 -r 1 --quantization int4 --quant-group-size 128 > "$RUN_DIR/ncu_30b_int4.txt" 2>&1
run_log "ncu rc=$? $(grep -c 'moe_quant_gemv_kernel' "$RUN_DIR/ncu_30b_int4.txt") kernel lines"
grep -E "moe_quant_gemv_kernel|moe_router|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Stall|Warp Cycles Per Issued|Issued Ipc|No Eligible" \
  "$RUN_DIR/ncu_30b_int4.txt" | head -120
RUN_BENCH_TIMEOUT=120 run_bench r223 qwen2.5-7b 7b_int4_b1 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=120 run_bench r223 qwen2.5-7b 7b_int8_b1 -b 1 --quantization int8
RUN_BENCH_TIMEOUT=120 run_bench r223 qwen3-30b-a3b 30b_bf16_b1 -b 1
run_done
