#!/usr/bin/env bash
# Run 286 (session 56): (1) the landed stack kernels (c05ca39, never run on a GPU) in this
# build (r286 = HEAD + the x-ring GEMV, off by default): the stack kernel's tests, the engine
# goldens, 0.5B tg b1 against r281 (57936e6); (2) the x-ring quantized decode GEMV
# (each tile's x copied into a per-warp shared-memory ring when its codes are requested, 4
# tiles ahead, instead of an L2 load when the tile's math starts): test_quant_cuda, the 7B
# linears alone (bench_quant_cuda: "xr" rows against the L1 kernel's), and 7B int4 tg b1
# with TLLM_QGEMV_XRING=0/1 alternated. Kept to ~420 s: the session's device time was
# mostly spent on refused starts.
set -u
tar -xJf build/r286.tar.xz
source scripts/device/run_lib.sh
run_init run286 "${LIMIT:-440}"
B=build/r286
RUN_TEST_TIMEOUT=60 run_gtest t_stack $B/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
RUN_TEST_TIMEOUT=60 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=110 run_gtest t_quant $B/test_quant_cuda
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2; do
  for x in 0 1; do
    TLLM_QGEMV_XRING=$x RUN_BENCH_TIMEOUT=60 run_bench r286 qwen2.5-7b 7b_int4_xr${x}_$r -b 1 --quantization int4 --quant-group-size 128
  done
done
timeout 70 $B/bench_quant_cuda > "$RUN_DIR/bench_quant_cuda.log" 2>&1
run_log "bench_quant_cuda rc=$? $(grep -c qgemv "$RUN_DIR/bench_quant_cuda.log") rows"
grep -E "int4_g128_(qkv|o_proj|gate_up|down) .*T1 " "$RUN_DIR/bench_quant_cuda.log" | cut -c1-110
grep -E "int8_(o_proj|down) .*T1 " "$RUN_DIR/bench_quant_cuda.log" | cut -c1-110
for v in r281 r286; do RUN_BENCH_TIMEOUT=20 run_bench $v qwen2.5-0.5b 05b_${v} -b 1; done
run_done
