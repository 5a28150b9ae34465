#!/usr/bin/env bash
# The quantized decode GEMV (src/kernels/cuda/quant_gemv.cu) on the GPU machine, over packed
# binaries built here (nothing is built on the device):
#   cmake --build build-gpu --target test_quant_cuda bench_quant_cuda && B=build-gpu bash scripts/device/pack.sh
#   (pack.sh must copy bench/cuda/bench_quant_cuda too)
#   device run, in the repo root: bash scripts/device/quant_gemv_check.sh   (carry: build-gpu/pack)
# 1. test_quant_cuda, the QuantCuda.Skinny* tests first (every block split of the kernel
#    against the float64 dequantize-then-matmul reference), then the whole suite; a
#    compute-sanitizer memcheck of the split test if anything fails.
# 2. bench_quant_cuda: each 7B linear alone (int4 g128, int4 g64, int8; T = 1, 8, 16; each
#    panels-per-block split at T = 1) and one decode step's 113 linears in a CUDA graph,
#    in GB/s and % of the copy rate it measures.
# Logs: $OUT/quant_gemv_tests.log and $OUT/quant_gemv_bench.log. About 3-4 minutes.
set -u
P=${P:-build-gpu/pack}
OUT=${OUT:-/tmp/quant_gemv_check}
mkdir -p "$OUT"
export TLLM_TEST_SOURCE_DIR=$PWD
export LD_LIBRARY_PATH="$(cd "$P/lib" 2>/dev/null && pwd):${LD_LIBRARY_PATH:-}"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:$LD_LIBRARY_PATH"
done
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
T=$OUT/quant_gemv_tests.log
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >"$T" 2>&1

stamp "== test_quant_cuda: skinny (decode) tests"
timeout 200 "$P/test_quant_cuda" --gtest_color=no --gtest_filter='QuantCuda.Skinny*' >>"$T" 2>&1
skinny_rc=$?
stamp "== test_quant_cuda: all"
timeout 200 "$P/test_quant_cuda" --gtest_color=no >>"$T" 2>&1
all_rc=$?
grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which is|gpu vs cpu|error" "$T" | head -40
if { [ $skinny_rc -ne 0 ] || [ $all_rc -ne 0 ]; } && command -v compute-sanitizer >/dev/null; then
  stamp "== memcheck of the block-split test"
  timeout 120 compute-sanitizer --tool memcheck --print-limit 10 "$P/test_quant_cuda" --gtest_color=no \
    --gtest_filter='QuantCuda.SkinnyGemmEveryBlockSplit' >>"$T" 2>&1
  grep -E "ERROR SUMMARY|Invalid|at 0x|by thread" "$T" | tail -12
fi

stamp "== bench_quant_cuda"
B=$OUT/quant_gemv_bench.log
timeout 300 "$P/bench_quant_cuda" >"$B" 2>&1
echo "bench rc=$?" >>"$B"
grep -E "CEILING|auto|decode_step|->|rc=" "$B"
stamp "== done (tests: skinny rc=$skinny_rc, all rc=$all_rc)"
