#!/usr/bin/env bash
# Run 191 (session 29): logit_bias in the CUDA sampler (sample.cu: a per-row (token, bias) list
# added to the scratch copy of the logits before the penalties), verified against the reference
# and the CPU backend; the whole gpu suite at this commit (the KV-capacity and server changes of
# the session touch no kernel); the batch-1 rows on this card.
set -u
source scripts/device/run_lib.sh
run_init run191 "${LIMIT:-580}"
B=build/r191
RUN_TEST_TIMEOUT=60 run_gtest t_sample $B/test_kernels_cuda --gtest_filter='CudaSample.*'
RUN_TEST_TIMEOUT=90 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=90 run_gtest t_moe $B/test_moe_cuda
RUN_TEST_TIMEOUT=90 run_gtest t_quant $B/test_quant_cuda
mkdir -p build/v191 && ln -sf ../r191/tinyllm build/v191/tinyllm
run_bench v191 qwen2.5-7b 7b_b1 -b 1
run_bench v191 qwen2.5-0.5b 05_b1 -b 1
RUN_TEST_TIMEOUT=250 run_gtest t_kernels $B/test_kernels_cuda
run_done
