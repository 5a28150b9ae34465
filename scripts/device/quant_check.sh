#!/usr/bin/env bash
# Quantized weights on the GPU machine (device tool), over binaries built here and carried
# along; nothing is built on the device. Build and pack here:
#   cmake -S . -B build-quant -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real
#   ninja -C build-quant test_quant_cuda tinyllm && bash scripts/device/quant_check.sh --pack
#   device run: bash scripts/device/quant_check.sh   (carry: build-quant/bin, about 15 MB)
# Runs the gpu-labelled quantization tests (every linear path for int4 / int8 against the
# dequantize-then-matmul reference, the quantized embedding, a quantized model against the
# CPU's exact f32 path), then `tinyllm bench` on random weights of the Qwen2.5-7B shape:
# int4 (group 64) prefill of 4096 tokens and batch-1 decode, the same prefill through the
# fused GEMM instead of dequantize + cuBLASLt, int8 decode, and bf16 as the baseline. Logs
# go to $OUT; a summary is printed last. About 4-5 minutes; every step has a timeout.
set -u
B=${B:-build-quant}
BIN=${BIN:-$B/bin}

if [ "${1:-}" = "--pack" ]; then  # here, not on the device
  set -e
  mkdir -p "$BIN/lib"
  cp "$B/tests/quant/test_quant_cuda" "$B/src/cli/tinyllm" "$BIN/"
  strip "$BIN/test_quant_cuda" "$BIN/tinyllm"
  for lib in $(ldd "$BIN/tinyllm" "$BIN/test_quant_cuda" | awk '/=>/{print $3}' | sort -u); do
    case "$(basename "$lib")" in
      libpcre2*|libutf8proc*|libcpp-httplib*|libbrotli*) cp -L "$lib" "$BIN/lib/" ;;
    esac
  done
  du -sh "$BIN"
  exit 0
fi

OUT=${OUT:-/tmp/quant_check}
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

stamp "== quantization gpu tests"
timeout 150 "$BIN/test_quant_cuda" --gtest_color=no "$@" >"$OUT/quant_tests.log" 2>&1
test_rc=$?
grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which is|gpu vs cpu|gpu bf16|error" "$OUT/quant_tests.log" | head -40
if [ $test_rc -ne 0 ] && command -v compute-sanitizer >/dev/null; then
  stamp "== tests failed: memcheck of the linear tests"
  timeout 60 compute-sanitizer --tool memcheck --print-limit 10 "$BIN/test_quant_cuda" --gtest_color=no \
    --gtest_filter='QuantCuda.Bf16OutputAndAutoPath:QuantCuda.EmbeddingRowsAreDequantized' >"$OUT/memcheck.log" 2>&1
  grep -E "ERROR SUMMARY|Invalid|at 0x|by thread|FAILED" "$OUT/memcheck.log" | head -20
fi

bench() {  # name, timeout, env assignment or -, args...
  local name=$1 tmo=$2 envset=$3
  shift 3
  stamp "== bench $name"
  if [ "$envset" = "-" ]; then
    timeout "$tmo" "$BIN/tinyllm" bench --device cuda --load-format dummy --skip-tokenizer-init --json "$@" \
      >"$OUT/bench_$name.log" 2>&1
  else
    env "$envset" timeout "$tmo" "$BIN/tinyllm" bench --device cuda --load-format dummy --skip-tokenizer-init --json "$@" \
      >"$OUT/bench_$name.log" 2>&1
  fi
  local rc=$?
  grep -E "^model:|^limits|^\|" "$OUT/bench_$name.log"
  [ $rc -ne 0 ] && { echo "bench $name rc=$rc"; tail -5 "$OUT/bench_$name.log"; }
  return 0
}
M=bench/configs/qwen2.5-7b
bench int4 110 - --model $M --max-model-len 8192 --quantization int4 --quant-group-size 64 -p 4096 -n 128 -b 1 -r 3
bench int4_fused_prefill 70 TLLM_QUANT_GEMM=fused --model $M --max-model-len 8192 --quantization int4 \
  --quant-group-size 64 -p 4096 -n 16 -b 1 -r 2
bench int8 90 - --model $M --max-model-len 8192 --quantization int8 -p 512 -n 128 -b 1 -r 3
bench bf16 70 - --model $M --max-model-len 8192 -p 4096 -n 64 -b 1 -r 2

stamp "== summary"
head -2 "$OUT/gpu.txt" | tail -1
echo "tests: $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/quant_tests.log" | tr '\n' ' ') (rc=$test_rc)"
grep -hE "gpu vs cpu|gpu bf16" "$OUT/quant_tests.log" | head -6
printf "| weights | test | batch | t/s | limit t/s | %% of limit | note |\n|---|---|---|---|---|---|---|\n"
for name in int4 int4_fused_prefill int8 bf16; do
  grep -E "^\| (pp|tg)" "$OUT/bench_$name.log" 2>/dev/null | sed "s/^| /| $name | /" | cut -d'|' -f1-4,6-9
done
echo "targets (H100): int4 tg >= 70% and int8 tg >= 75% of the roofline; int4 pp4096 >= 50% of the bf16 GEMM peak"
