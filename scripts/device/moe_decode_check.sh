#!/usr/bin/env bash
# The fused MoE decode path (issue #6) on the GPU machine, over the packed binaries
# (nothing is built on the device). The lead builds test_moe_cuda, bench_moe_cuda (and
# tinyllm) in build-gpu and packs them into build-gpu/pack/ with their shared libraries in
# build-gpu/pack/lib; run from the repo root:
#   bash scripts/device/moe_decode_check.sh            (logs in $OUT)
# Steps: the MoE gpu tests (fused block vs the double reference at T = 1, 2, 8, 16, ties,
# shared expert, graph replay; the older op tests; the MoE test model vs the HF goldens),
# bench_moe_cuda (the block alone at the 30B-A3B and 1.5-MoE-A2.7B shapes, T = 1, 8, 32,
# per call and as a graph of all layers, fused vs the three-op sequence; then the fused
# path's three kernels alone and chained at 30B-A3B, T = 1 and 8), then, when tinyllm
# is packed, `tinyllm bench` of Qwen3-30B-A3B decode at batch 1 and 32. A summary is printed
# last. Extra arguments go to the test binary (e.g. --gtest_filter=MoeBlockCuda.*).
set -u
BIN=${BIN:-build-gpu/pack}
OUT=${OUT:-/tmp/moe_decode_check}
mkdir -p "$OUT"
export TLLM_TEST_SOURCE_DIR=$PWD
[ -d "$BIN/lib" ] && export LD_LIBRARY_PATH="$(cd "$BIN/lib" && pwd):${LD_LIBRARY_PATH:-}"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>&1 | tee "$OUT/gpu.txt"

stamp "== MoE gpu tests"
timeout 240 "$BIN/test_moe_cuda" --gtest_color=no "$@" >"$OUT/moe_tests.log" 2>&1
test_rc=$?
stamp "tests done (the binary should take < 60 s: real-size references run on sampled rows)"
grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[       OK|Failure|Expected|Which is|rel_err|moe cuda|error" "$OUT/moe_tests.log" | head -60
if [ $test_rc -ne 0 ] && command -v compute-sanitizer >/dev/null; then
  stamp "== tests failed: memcheck of the fused block tests"
  timeout 90 compute-sanitizer --tool memcheck --print-limit 10 "$BIN/test_moe_cuda" --gtest_color=no \
    --gtest_filter='MoeBlockCuda.FusedBlockMatchesReference:MoeBlockCuda.RouterTies*' >"$OUT/memcheck.log" 2>&1
  grep -E "ERROR SUMMARY|Invalid|at 0x|by thread|FAILED" "$OUT/memcheck.log" | head -20
  timeout 90 compute-sanitizer --tool racecheck --print-limit 10 "$BIN/test_moe_cuda" --gtest_color=no \
    --gtest_filter='MoeBlockCuda.RouterTies*' >"$OUT/racecheck.log" 2>&1
  grep -E "ERROR SUMMARY|hazard" "$OUT/racecheck.log" | head -10
fi

stamp "== bench_moe_cuda"
timeout 300 "$BIN/bench_moe_cuda" >"$OUT/bench_moe.log" 2>&1
bench_rc=$?
cat "$OUT/bench_moe.log"

if [ -x "$BIN/tinyllm" ]; then
  stamp "== tinyllm bench qwen3-30b-a3b (pp512, tg64 at batch 1 and 32)"
  timeout 300 "$BIN/tinyllm" bench --device cuda --load-format dummy --skip-tokenizer-init \
    --model bench/configs/qwen3-30b-a3b --max-model-len 4096 -p 512 -n 64 -b 1,32 -r 1 >"$OUT/bench_30b_a3b.log" 2>&1 ||
    { echo "tinyllm bench rc=$? (see $OUT/bench_30b_a3b.log)"; tail -5 "$OUT/bench_30b_a3b.log"; }
  grep -E "^model:|^limits|^\|" "$OUT/bench_30b_a3b.log"
fi

stamp "== summary"
echo "tests rc=$test_rc: $(grep -cE '^\[       OK' "$OUT/moe_tests.log") ok, $(grep -cE '^\[  FAILED  \] [A-Za-z]' "$OUT/moe_tests.log") failed"
echo "bench_moe_cuda rc=$bench_rc"
grep -E "^== |^-- |graph|alone|router_topk \+|all three" "$OUT/bench_moe.log"
