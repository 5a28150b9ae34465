#!/usr/bin/env bash
# Run 307c (session 61): one GPU. Two tensor-parallel ranks on GPU 0 summed by the p2p
# all-reduce kernel (kernels/cuda/all_reduce_p2p.cu; graphs and eager) and through host memory,
# against HF, the CPU and one GPU; the refusal of 2 ranks on 1 GPU; then a 0.5B-shape decode
# with 2 ranks on GPU 0 through the p2p kernel (a smoke run of the graphs: two ranks share one
# GPU, so its speed says nothing about 2 GPUs).
set -u
tar -xJf build/r307.tar.xz
source scripts/device/run_lib.sh
run_init run307c "${LIMIT:-300}"
B=build/r307
RUN_TEST_TIMEOUT=150 run_gtest tp1gpu $B/test_engine_gpu --gtest_filter='*GpuTensorParallel*'
TLLM_TP_DEVICES=0,0 TLLM_TP_COLLECTIVE=p2p timeout 90 $B/tinyllm bench --model bench/configs/qwen2.5-0.5b \
  --load-format dummy --device cuda --max-model-len 4096 -p 16 -n 128 -b 1 -r 3 --tensor-parallel-size 2 \
  > "$RUN_DIR/05b_p2p_same_gpu.log" 2>&1
run_log "0.5B 2 ranks on GPU 0 (p2p) rc=$? $(grep -E '^\| tg' "$RUN_DIR/05b_p2p_same_gpu.log" | cut -c1-80)"
run_done
