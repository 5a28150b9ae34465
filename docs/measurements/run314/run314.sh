#!/usr/bin/env bash
# Run 314 (session 63, H100): the final HEAD (717d605, built by the fresh-clone CI) on the GPU:
# test_engine_gpu (the NaN-model test after its refactor onto run_to_completion; the host
# allocator's memory check under CUDA loads), and the two short rows (which also load a 7B
# shape through the checked host allocations). Pack build/r314: tinyllm, test_engine_gpu.
set -u
tar -xJf build/r314.tar.xz
source scripts/device/run_lib.sh
run_init run314 "${LIMIT:-280}"
B=build/r314
RUN_TEST_TIMEOUT=150 run_gtest t_engine $B/test_engine_gpu
grep -E "Failure|Which is|Expected" "$RUN_DIR/t_engine.log" | head -20
RUN_BENCH_TIMEOUT=60 run_bench r314 qwen2.5-0.5b 05b_bf16 -b 1
RUN_BENCH_TIMEOUT=90 run_bench r314 qwen2.5-7b 7b_int4 -b 1 --quantization int4 --quant-group-size 128
run_done
