#!/usr/bin/env bash
# Runs on the GPU machine (device tool) over binaries built here and carried along:
#   cmake -S . -B build-cuda -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real
#   ninja -C build-cuda test_kernels_cuda bench_kernels_cuda
#   mkdir -p build-cuda/bin && cp build-cuda/tests/kernels/cuda/test_kernels_cuda build-cuda/bench/cuda/bench_kernels_cuda build-cuda/bin/
#   device run: bash scripts/device/cuda_check.sh   (carry: build-cuda/bin)
# Runs every gpu test and every micro-benchmark, writes full logs to $OUT, prints a short
# summary last. Extra arguments go to the test binary (e.g. --gtest_filter=...).
set -u
BIN=${BIN:-build-cuda/bin}
OUT=${OUT:-/tmp/cuda_check}
mkdir -p "$OUT"
# cuBLASLt / cudart: the toolkit's, else the ones PyTorch ships.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
if ! ldconfig -p | grep -q libcublasLt.so.13 && [ ! -e /usr/local/cuda/lib64/libcublasLt.so.13 ]; then
  extra=$(python3 -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p)))' 2>/dev/null)
  export LD_LIBRARY_PATH="$extra:${LD_LIBRARY_PATH:-}"
fi

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv \
  2>&1 | tee "$OUT/gpu.txt"
ldd "$BIN/test_kernels_cuda" | grep -E "not found|cublas|cudart" | tee -a "$OUT/gpu.txt"

echo "== tests"
timeout 200 "$BIN/test_kernels_cuda" --gtest_color=no "$@" >"$OUT/tests.log" 2>&1
test_rc=$?
grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|error|Expected|Which is|rel_err|desc|seqs" "$OUT/tests.log" | head -60

echo "== benchmarks"
timeout 320 "$BIN/bench_kernels_cuda" >"$OUT/bench.log" 2>&1
bench_rc=$?

# SASS facts: 16-byte loads and tensor-core MMAs in the hot kernels.
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$BIN/bench_kernels_cuda" >"$OUT/sass.txt" 2>&1
  awk '/Function :/{f=$3} /HMMA/{h[f]++} /LDG.E.128|LDG.E.ENL2.128|LDG.E.LTC128B.128/{l[f]++} /LDGSTS/{c[f]++} /LDL|STL/{s[f]++}
       END{for (k in h) if (k ~ /gemv|attention/) printf "%-110.110s HMMA=%d LDG128=%d LDGSTS=%d local=%d\n", k, h[k], l[k], c[k], s[k]}' \
    "$OUT/sass.txt" | sort | head -30 | tee "$OUT/sass_summary.txt"
  gzip -f "$OUT/sass.txt"
fi

echo "== summary"
grep -E "^CEILING|tok/s" "$OUT/bench.log"
sed -n '/^SUMMARY/,$p' "$OUT/bench.log"
tail -3 "$OUT/tests.log"
echo "tests rc=$test_rc bench rc=$bench_rc"
