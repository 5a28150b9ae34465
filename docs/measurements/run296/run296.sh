#!/usr/bin/env bash
# Run 296 (session 58, H100): the wgmma prefill attention with whole turns of its K / V ring
# unrolled, so that each step's stage is a compile-time constant (TLLM_ATTN_UNROLL=1, the
# build's default) against the counters of the landed kernel (TLLM_ATTN_UNROLL=0), same
# binary: SASS of both cubins, the kernel alone, its tests in both forms, 7B / 0.5B prefill
# in the engine alternated, a kernel timeline of 7B pp4096 in each form, test_engine_gpu.
set -u
tar -xJf build/r296.tar.xz
source scripts/device/run_lib.sh
run_init run296 "${LIMIT:-580}"
N=build/r296
for c in base unroll; do
  cuobjdump -sass $N/$c.cubin > "$RUN_DIR/sass_$c.txt" 2>&1
  run_log "sass $c rc=$? $(wc -l < "$RUN_DIR/sass_$c.txt") lines"
done
for r in 1 2; do
  TLLM_ATTN_UNROLL=0 run_attn_quick off_$r $N
  TLLM_ATTN_UNROLL=1 run_attn_quick on_$r $N
done
RUN_TEST_TIMEOUT=120 run_gtest t_attn_on $N/test_kernels_cuda --gtest_filter='CudaAttention*'
TLLM_ATTN_UNROLL=0 RUN_TEST_TIMEOUT=120 run_gtest t_attn_off $N/test_kernels_cuda --gtest_filter='CudaAttention*'
for r in 1 2 3 4; do
  TLLM_ATTN_UNROLL=0 RUN_BENCH_TIMEOUT=60 run_prefill 7b_pp4096_off_$r $N/tinyllm qwen2.5-7b 4096
  TLLM_ATTN_UNROLL=1 RUN_BENCH_TIMEOUT=60 run_prefill 7b_pp4096_on_$r $N/tinyllm qwen2.5-7b 4096
done
for r in 1 2; do
  TLLM_ATTN_UNROLL=0 RUN_BENCH_TIMEOUT=40 run_prefill 05b_pp4096_off_$r $N/tinyllm qwen2.5-0.5b 4096
  TLLM_ATTN_UNROLL=1 RUN_BENCH_TIMEOUT=40 run_prefill 05b_pp4096_on_$r $N/tinyllm qwen2.5-0.5b 4096
done
TLLM_ATTN_UNROLL=0 RUN_BENCH_TIMEOUT=80 run_prefill 7b_pp16384_off $N/tinyllm qwen2.5-7b 16384
TLLM_ATTN_UNROLL=1 RUN_BENCH_TIMEOUT=80 run_prefill 7b_pp16384_on $N/tinyllm qwen2.5-7b 16384
for u in 0 1; do
  TLLM_ATTN_UNROLL=$u CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$RUN_DIR/trace_pp4096_$u.csv \
    timeout 90 $N/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    --max-model-len 8192 -p 4096 -n 1 -b 1 -r 2 > "$RUN_DIR/trace_pp4096_$u.log" 2>&1
  run_log "trace pp4096 unroll=$u rc=$? $(grep -E '^\| pp' "$RUN_DIR/trace_pp4096_$u.log" | cut -c1-90 | paste -sd' ')"
done
RUN_TEST_TIMEOUT=150 run_gtest t_engine $N/test_engine_gpu
run_done
