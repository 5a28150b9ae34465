#!/usr/bin/env bash
# Run 284 (session 55): the build to land (c05ca39: dense bf16 stack kernels without the MoE
# phases, layer pointers read from p.layers in them, i.e. run 282's r283 at D = 64 and r282 at
# D = 128) against the landed build r281 on an H100: the stack kernel's tests and the engine
# goldens; 0.5B and 1.5B tg b1 alternated. Kept short: the session had ~500 s of device time left.
set -u
tar -xJf build/r284.tar.xz
source scripts/device/run_lib.sh
run_init run284 "${LIMIT:-170}"
RUN_TEST_TIMEOUT=60 run_gtest t_stack build/r284/test_kernels_cuda --gtest_filter='CudaDecoderStack.*'
RUN_TEST_TIMEOUT=40 run_gtest t_engine build/r284/test_engine_gpu
grep -hE "^\[  FAILED|Failure" -A3 "$RUN_DIR"/t_*.log | head -20
for r in 1 2; do
  for v in r281 r284; do RUN_BENCH_TIMEOUT=20 run_bench $v qwen2.5-0.5b 05b_${v}_$r -b 1; done
done
for v in r281 r284; do RUN_BENCH_TIMEOUT=25 run_bench $v qwen2.5-1.5b 15b_${v} -b 1; done
run_done
