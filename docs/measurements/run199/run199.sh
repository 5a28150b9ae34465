#!/usr/bin/env bash
# Run 199 (session 31): the GEMV's x loads written as `!ok ? 0 : load(p)` with the address
# first (gemv.cu load_x: every kernel's machine code changes; the T = 1 loops issue each
# group's x loads ahead of the next group's address arithmetic). Session 30's binary (r196)
# against this one (r199), alternated; TLLM_GEMV_T1_XPF=1 (x one group ahead at T = 1, a
# measurement knob) beside them. Then the gpu suites on r199.
set -u
source scripts/device/run_lib.sh
run_init run199 "${LIMIT:-560}"
B=build/r199
for r in 1 2; do
  run_bench r196 qwen2.5-7b 7b_b1_r196_$r -b 1
  run_bench r199 qwen2.5-7b 7b_b1_r199_$r -b 1
  TLLM_GEMV_T1_XPF=1 run_bench r199 qwen2.5-7b 7b_b1_r199xpf_$r -b 1
done
for m in qwen2.5-0.5b qwen2.5-1.5b qwen3-8b; do
  run_bench r196 $m ${m}_b1_r196 -b 1
  run_bench r199 $m ${m}_b1_r199 -b 1
  TLLM_GEMV_T1_XPF=1 run_bench r199 $m ${m}_b1_r199xpf -b 1
done
run_bench r196 qwen2.5-7b 7b_b8_r196 -b 8
run_bench r199 qwen2.5-7b 7b_b8_r199 -b 8
RUN_TEST_TIMEOUT=200 run_gtest t_kernels $B/test_kernels_cuda
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=60 run_gtest t_moe $B/test_moe_cuda
RUN_BENCH_TIMEOUT=80 run_bench r196 qwen3-30b-a3b 30b_b1_r196 -b 1
RUN_BENCH_TIMEOUT=80 run_bench r199 qwen3-30b-a3b 30b_b1_r199 -b 1
run_done
