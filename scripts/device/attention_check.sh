#!/usr/bin/env bash
# Attention (issue #7) on the GPU machine, over packed binaries (B=build-gpu bash
# scripts/device/pack.sh, with bench/cuda/bench_attention_cuda among the packed files):
#   device run: bash scripts/device/attention_check.sh   (carry: build-gpu/pack)
# Runs the CudaAttention gtests (float64 references: generic and prefill kernels, dispatch,
# batched prompts of issue #7)
# and bench_attention_cuda (generic vs prefill kernel, TFLOP/s and % of the cuBLASLt bf16
# GEMM peak), counts local-memory (spill) instructions in the attention kernels when
# cuobjdump is there, writes full logs to $OUT and prints a short summary last.
# Extra arguments go to the bench (e.g. --quick).
set -u
BIN=${BIN:-build-gpu/pack}
OUT=${OUT:-/tmp/attention_check}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$BIN/lib:${LD_LIBRARY_PATH:-}"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:$LD_LIBRARY_PATH"
done
if ! ldconfig -p | grep -q libcublasLt.so.13 && [ ! -e /usr/local/cuda/lib64/libcublasLt.so.13 ]; then
  extra=$(python3 -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p)))' 2>/dev/null)
  export LD_LIBRARY_PATH="$extra:$LD_LIBRARY_PATH"
fi

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit --format=csv \
  2>&1 | tee "$OUT/gpu.txt"
ldd "$BIN/bench_attention_cuda" | grep -E "not found" | tee -a "$OUT/gpu.txt"

echo "== tests"
timeout 300 "$BIN/test_kernels_cuda" --gtest_color=no --gtest_filter='CudaAttention.*' >"$OUT/tests.log" 2>&1
test_rc=$?
grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[       OK|Failure|Expected|Which is|kernel=|no longer routes" "$OUT/tests.log" | head -60

echo "== bench"
timeout 280 "$BIN/bench_attention_cuda" "$@" >"$OUT/bench.log" 2>&1
bench_rc=$?
cat "$OUT/bench.log" | grep -v "^SUMMARY"

if command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$BIN/bench_attention_cuda" >"$OUT/sass.txt" 2>&1
  awk '/Function :/{f=$3} /HMMA/{h[f]++} /LDSM/{m[f]++} /LDGSTS/{c[f]++} /LDL|STL/{s[f]++}
       END{for (k in h) if (k ~ /attention/) printf "%-100.100s HMMA=%d LDSM=%d LDGSTS=%d local=%d\n", k, h[k], m[k], c[k], s[k]}' \
    "$OUT/sass.txt" | sort | tee "$OUT/sass_summary.txt"
  gzip -f "$OUT/sass.txt"
fi

echo "== summary"
grep -E "^CEILING|^SUMMARY" "$OUT/bench.log"
grep -E "max\|diff\| [0-9.e+-]*[1-9]" "$OUT/bench.log" | awk '{for (i=1;i<=NF;i++) if ($i=="max|diff|" && $(i+1)+0 > 0.01) {print "LARGE DIFF: " $0; break}}'
grep -c "generic rerun vs first call: max|diff| 0$" "$OUT/bench.log" | sed 's/^/bench cases with a bit-identical generic rerun: /'
grep "inputs not stable" "$OUT/bench.log"
tail -3 "$OUT/tests.log"
echo "tests rc=$test_rc bench rc=$bench_rc"
