#!/usr/bin/env bash
# Run 103: the chain between decode graphs shortened (small uploads in kernel parameters,
# feed rows in the feed kernel's parameters, the draw's copy to the host on its own stream):
# the gpu suites, then build/asy (new) against build/asy0 (run 102's binary) alternated,
# async scheduling on and off, and timelines of the new binary.
set -u
source scripts/device/run_lib.sh
run_init run103 "${LIMIT:-580}"
run_gtest t_engine build/asy/test_engine_gpu
run_gtest t_kernels build/asy/test_kernels_cuda --gtest_filter='CudaBackendTest*:CudaSample*:CudaElementwise*:CudaAttention*:CudaDecoderStack*'
run_gtest t_quant build/asy/test_quant_cuda
run_gtest t_moe build/asy/test_moe_cuda
for round in 1 2; do
  for v in asy0 asy; do
    run_bench "$v" qwen2.5-0.5b "s05_${v}_$round" -b 1
    run_bench "$v" qwen2.5-7b "s7_${v}_$round" -b 1
  done
done
for v in asy0 asy; do
  run_bench "$v" qwen2.5-7b "s7_int4_$v" -b 1 --quantization int4 --quant-group-size 128
  run_bench "$v" qwen2.5-1.5b "s15_$v" -b 1
done
run_bench asy qwen2.5-0.5b "s05_asy_sync" -b 1 --async-scheduling off
run_bench asy qwen2.5-7b "s7_asy_sync" -b 1 --async-scheduling off
run_trace 05_on build/asy/tinyllm qwen2.5-0.5b
run_trace 05_off build/asy/tinyllm qwen2.5-0.5b --async-scheduling off
run_trace 7b_on build/asy/tinyllm qwen2.5-7b
run_done
