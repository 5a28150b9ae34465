#!/usr/bin/env bash
# Run 205 (session 33): every gpu suite on the session's final code (build/r205), and
# structured output by regex on CUDA through `generate` (the sampler's allow lists on the GPU).
set -u
source scripts/device/run_lib.sh
run_init run205 "${LIMIT:-560}"
B=build/r205
RUN_TEST_TIMEOUT=220 run_gtest t_kernels $B/test_kernels_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_quant $B/test_quant_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
for seed in 1 2 3; do
  $B/tinyllm generate --model models/tiny-qwen2-demo --device cuda --prompt "Is it good?" --seed $seed \
    --temperature 1 --max-tokens 24 --regex '(Yes|No), [a-z]+( [a-z]+){0,4}\.' > "$RUN_DIR/regex_$seed.txt" 2>&1
  run_log "regex seed $seed rc=$? $(tail -1 "$RUN_DIR/regex_$seed.txt" | cut -c1-160)"
done
run_bench r205 qwen2.5-0.5b 0.5b_b1 -b 1
run_done
# test_kernels_cuda outgrew the 220-s limit above (36 of 48 tests passed before it); the other
# 12 ran in a second call (logs/t_kernels_rest.log):
#   test_kernels_cuda --gtest_filter='CudaLinear.LinearRopeKvWriteMatchesUnfused:CudaLinear.AutoRoutesEveryShape:CudaLinear.RejectsQuantizedAndNonBf16Weights:CudaSample.*'
