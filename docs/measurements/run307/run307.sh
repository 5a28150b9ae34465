#!/usr/bin/env bash
# Run 307 (session 61): tensor parallelism over 2 GPUs (NCCL, one thread per rank), the build
# of this session (build/r307: tinyllm, test_engine_gpu, test_quant_cuda). GpuTensorParallel.*
# (bf16 over 2 GPUs against HF goldens, the CPU and one GPU; graphs and eager; dense, MoE,
# W4A16, FP8), Qwen2.5-7B rows over 1 and 2 GPUs (bf16 pp512 / tg128 b1 / b8, int4 g128
# tg128 b1), then the rest of test_engine_gpu and test_quant_cuda (the TP=1 paths).
set -u
tar -xJf build/r307.tar.xz
source scripts/device/run_lib.sh
run_init run307 "${LIMIT:-580}"
export NCCL_NVLS_ENABLE=0  # no NVLink multicast (KINDS.md)
nccl=$(find / -name 'libnccl.so.2' -not -path '/proc/*' 2>/dev/null | head -1)
run_log "nccl: $nccl"
[ -n "$nccl" ] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "$nccl")
nvidia-smi topo -m > "$RUN_DIR/topo.txt" 2>&1
B=build/r307
RUN_TEST_TIMEOUT=200 run_gtest tp $B/test_engine_gpu --gtest_filter='*GpuTensorParallel*'
for tp in 1 2; do
  timeout 120 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    --max-model-len 4096 -p 512 -n 128 -b 1 -r 3 --tensor-parallel-size $tp > "$RUN_DIR/7b_tp$tp.log" 2>&1
  run_log "7b tp$tp rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/7b_tp$tp.log" | cut -c1-90 | paste -sd' ')"
done
for tp in 2 1; do
  timeout 100 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    --max-model-len 4096 -p 16 -n 128 -b 8 -r 3 --tensor-parallel-size $tp > "$RUN_DIR/7b_b8_tp$tp.log" 2>&1
  run_log "7b b8 tp$tp rc=$? $(grep -E '^\| tg' "$RUN_DIR/7b_b8_tp$tp.log" | cut -c1-90 | paste -sd' ')"
done
timeout 120 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --quantization int4 \
  --quant-group-size 128 --max-model-len 4096 -p 16 -n 128 -b 1 -r 3 --tensor-parallel-size 2 > "$RUN_DIR/7b_int4_tp2.log" 2>&1
run_log "7b int4 tp2 rc=$? $(grep -E '^\| tg' "$RUN_DIR/7b_int4_tp2.log" | cut -c1-90 | paste -sd' ')"
RUN_TEST_TIMEOUT=150 run_gtest rest $B/test_engine_gpu --gtest_filter='-*GpuTensorParallel*'
RUN_TEST_TIMEOUT=150 run_gtest quant $B/test_quant_cuda
run_done
