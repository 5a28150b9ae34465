#!/usr/bin/env bash
# Mixture-of-experts checks on the GPU machine (device tool) over binaries built here and
# carried along; nothing is built on the device. Build and pack (here):
#   cmake -S . -B build-moe -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real
#   ninja -C build-moe test_moe_cuda tinyllm && bash scripts/device/moe_pack.sh
#   device run: bash scripts/device/moe_check.sh   (carry: build-moe/bin)
# Runs the gpu-labelled MoE tests (ops vs the double-precision reference on the decode and
# grouped-GEMM paths, graph replay, the two MoE test models vs the HF goldens), then
# `tinyllm bench` with random weights of the real shapes: Qwen3-30B-A3B (decode at batch 1,
# 32, 128; prefill of 4096 tokens) and Qwen1.5-MoE-A2.7B (batch 1, 32; prefill 4096). Logs go
# to $OUT; a summary table is printed last. About 4-5 minutes; every step has a timeout (7.5 at most).
set -u
BIN=${BIN:-build-moe/bin}
OUT=${OUT:-/tmp/moe_check}
mkdir -p "$OUT"
export TLLM_TEST_SOURCE_DIR=$PWD
[ -d "$BIN/lib" ] && export LD_LIBRARY_PATH="$(cd "$BIN/lib" && pwd):${LD_LIBRARY_PATH:-}"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
if ! ldconfig -p | grep -q libcublasLt.so.13 && [ ! -e /usr/local/cuda/lib64/libcublasLt.so.13 ]; then
  extra=$(python3 -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p)))' 2>/dev/null)
  export LD_LIBRARY_PATH="$extra:${LD_LIBRARY_PATH:-}"
fi
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>&1 | tee "$OUT/gpu.txt"
ldd "$BIN/tinyllm" | grep -E "not found|cublas|cudart" | tee -a "$OUT/gpu.txt"

stamp "== MoE gpu tests"
timeout 120 "$BIN/test_moe_cuda" --gtest_color=no "$@" >"$OUT/moe_tests.log" 2>&1
test_rc=$?
grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which is|rel_err|moe cuda|error" "$OUT/moe_tests.log" | head -50
if [ $test_rc -ne 0 ] && command -v compute-sanitizer >/dev/null; then
  stamp "== tests failed: memcheck of the op tests"
  timeout 45 compute-sanitizer --tool memcheck --print-limit 10 "$BIN/test_moe_cuda" --gtest_color=no \
    --gtest_filter='MoeCuda.Router*:MoeCuda.ExpertsMatch*:MoeCuda.ExpertsHandle*' >"$OUT/memcheck.log" 2>&1
  grep -E "ERROR SUMMARY|Invalid|at 0x|by thread|FAILED" "$OUT/memcheck.log" | head -20
fi

bench() {  # name, timeout, args...
  local name=$1 tmo=$2
  shift 2
  stamp "== bench $name"
  timeout "$tmo" "$BIN/tinyllm" bench --device cuda --load-format dummy --skip-tokenizer-init --json "$@" \
    >"$OUT/bench_$name.log" 2>&1
  local rc=$?
  grep -E "^model:|^limits|^\|" "$OUT/bench_$name.log"
  [ $rc -ne 0 ] && { echo "bench $name rc=$rc"; tail -5 "$OUT/bench_$name.log"; }
  return 0
}
bench qwen3-30b-a3b 200 --model bench/configs/qwen3-30b-a3b --max-model-len 8192 -p 4096 -n 32 -b 1,32,128 -r 1
bench qwen1.5-moe-a2.7b 90 --model bench/configs/qwen1.5-moe-a2.7b --max-model-len 8192 -p 4096 -n 32 -b 1,32 -r 1

stamp "== summary"
cat "$OUT/gpu.txt" | head -2 | tail -1
echo "tests: $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/moe_tests.log" | tr '\n' ' ') (rc=$test_rc)"
grep -h "moe cuda" "$OUT/moe_tests.log" | head -4
printf "| model | test | batch | t/s | limit t/s | %% of limit | note |\n|---|---|---|---|---|---|---|\n"
for name in qwen3-30b-a3b qwen1.5-moe-a2.7b; do
  grep -E "^\| (pp|tg)" "$OUT/bench_$name.log" 2>/dev/null | awk -v m="$name" -F'|' '{printf "| %s |%s|%s|%s|%s|%s|%s|\n", m, $2, $3, $5, $6, $7, $8}'
done
stamp "done"
