#!/usr/bin/env bash
# Run 104: sample()'s copy to the host back in stream order (the synchronous path), the
# deferred draws' on the copy stream: the gpu engine suite, sampling and backend tests, and
# synchronous / async rows of build/asy against build/asy0 (run 102's binary).
set -u
source scripts/device/run_lib.sh
run_init run104 "${LIMIT:-400}"
run_gtest t_engine build/asy/test_engine_gpu
run_gtest t_kernels build/asy/test_kernels_cuda --gtest_filter='CudaBackendTest*:CudaSample*:CudaElementwise*'
for v in asy0 asy; do
  run_bench "$v" qwen2.5-0.5b "s05_sync_$v" -b 1 --async-scheduling off
  run_bench "$v" qwen2.5-7b "s7_sync_$v" -b 1 --async-scheduling off
done
for v in asy0 asy; do
  run_bench "$v" qwen2.5-0.5b "s05_$v" -b 1
  run_bench "$v" qwen2.5-7b "s7_b8_$v" -b 8
done
run_trace 05_off build/asy/tinyllm qwen2.5-0.5b --async-scheduling off
run_done
