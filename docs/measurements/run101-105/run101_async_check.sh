#!/usr/bin/env bash
# Async scheduling on the GPU, one device call (branch async-cuda; build here, carry the
# binaries): every gpu test suite (CudaBackend::copy now uploads small tensors through the
# pinned ring without a sync, so all of them, not only the engine's), then decode rows with
# --async-scheduling on / off alternated, int4 / int8 with attention's early release of the
# quantized o projection off / on (TLLM_ATTN_RELEASE_EARLY), and kernel timelines of both (the gap between one
# step's graph and the next: ~50-60 us synchronous, run 98; scripts/dev/kernel_trace.py).
#   BIN=build/asy (tinyllm, test_engine_gpu, test_kernels_cuda, test_quant_cuda, test_moe_cuda);
#   build/pack/lib holds the runtime libraries, libcupti.so.13 and libkernel_trace.so
#   PART=1 (tests, bf16 rows, timelines) or PART=2 (quantized, batch 8, MoE rows): one device call each
#   OUT=... PART=1 bash scripts/device/async_check.sh
set -u
source scripts/device/run_lib.sh
PART=${PART:-1}
run_init "async_check$PART" "${LIMIT:-580}"
B=${BIN:-build/asy}
V=$(basename "$B")
if [ "$PART" = 1 ]; then
run_gtest t_engine "$B/test_engine_gpu"
run_gtest t_kernels "$B/test_kernels_cuda"
run_gtest t_quant "$B/test_quant_cuda"
run_gtest t_moe "$B/test_moe_cuda"
for round in 1 2; do
  for m in off on; do
    run_bench "$V" qwen2.5-0.5b "s05_${m}_$round" -b 1 --async-scheduling "$m"
    run_bench "$V" qwen2.5-7b "s7_${m}_$round" -b 1 --async-scheduling "$m"
  done
done
for m in off on; do
  run_trace "7b_$m" "$B/tinyllm" qwen2.5-7b --async-scheduling "$m"
  TLLM_DECODER_STACK=0 run_trace "05_opbyop_$m" "$B/tinyllm" qwen2.5-0.5b --async-scheduling "$m"
done
else
# attention's early release of a quantized o projection (AttentionMeta::release_dependents_early)
for e in 0 1; do
  TLLM_ATTN_RELEASE_EARLY=$e run_bench "$V" qwen2.5-7b "s7_int4_early$e" -b 1 --quantization int4 --quant-group-size 128
  TLLM_ATTN_RELEASE_EARLY=$e run_bench "$V" qwen2.5-7b "s7_int8_early$e" -b 1 --quantization int8
done
for m in off on; do
  run_bench "$V" qwen2.5-7b "s7_int4_$m" -b 1 --quantization int4 --quant-group-size 128 --async-scheduling "$m"
  run_bench "$V" qwen2.5-7b "s7_b8_$m" -b 8 --async-scheduling "$m"
  run_bench "$V" qwen3-30b-a3b "moe_$m" -b 1 --async-scheduling "$m"
done
fi
run_done
