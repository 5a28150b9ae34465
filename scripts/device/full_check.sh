#!/usr/bin/env bash
# One device call: GPU goldens for head_dim 64/128 models, every gpu test, and the dense
# benchmarks with the HF peer line. Binaries come from `B=build-gpu bash scripts/device/pack.sh`
# (carry build-gpu/pack). Logs go to $OUT; a summary prints last.
#   STAGES="goldens tests bench peer" (default all)
set -u
P=${P:-build-gpu/pack}
OUT=${OUT:-/tmp/full_check}
STAGES=${STAGES:-goldens tests bench peer}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$P/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TLLM_TEST_SOURCE_DIR=$PWD PYTHONUNBUFFERED=1
has() { [[ " $STAGES " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
ldd "$P/tinyllm" | grep "not found" | tee -a "$OUT/gpu.txt"
summary=()

if has goldens; then
  python3 scripts/goldens/model_goldens.py /tmp/newgold qwen2_hd64,qwen3_hd128,qwen3_moe_hd64 > "$OUT/goldens.log" 2>&1
  grep -E "^(ok|FAILED)" "$OUT/goldens.log"
  cp -r /tmp/newgold/models/* tests/data/models/ 2>/dev/null
  tar czf "$OUT/newgold.tar.gz" -C /tmp/newgold/models .
fi

if has tests; then
  for t in test_kernels_cuda test_engine_gpu test_moe_cuda test_quant_cuda; do
    [[ -x "$P/$t" ]] || continue
    timeout 240 "$P/$t" --gtest_color=no > "$OUT/$t.log" 2>&1
    rc=$?
    line=$(grep -E "^\[  PASSED  \]|^\[  FAILED  \] [0-9]+ test" "$OUT/$t.log" | tr '\n' ' ')
    echo "== $t rc=$rc $line"
    grep -E "^\[  FAILED  \] [^0-9]|Failure" "$OUT/$t.log" | head -15
    summary+=("$t rc=$rc $line")
  done
  grep -h "greedy steps compared" "$OUT/test_engine_gpu.log" 2>/dev/null | head -12
fi

if has bench; then
  T="$P/tinyllm"
  timeout 300 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    -p 512,4096 -n 128 -b 1,8,32 -r 3 --max-model-len 8192 > "$OUT/bench_7b.log" 2>&1
  timeout 120 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    -p 512 -n 128 -d 4096 -b 1,32 -r 2 --max-model-len 8192 > "$OUT/bench_7b_depth.log" 2>&1
  timeout 120 $T bench --model bench/configs/qwen2.5-0.5b --load-format dummy --device cuda \
    -p 512 -n 128 -b 1,32 -r 3 --max-model-len 8192 > "$OUT/bench_05b.log" 2>&1
  cat "$OUT/bench_7b.log" "$OUT/bench_7b_depth.log" "$OUT/bench_05b.log" | grep -vE "^\[tinyllm info" | tail -40
fi

if has profile; then
  # Per-op device time (synchronised around every op; graphs off) for the dense shapes.
  T="$P/tinyllm"
  TLLM_PROFILE=1 timeout 150 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    -p 512 -n 32 -b 1 -r 1 --max-model-len 4096 > "$OUT/profile_7b_b1.log" 2>&1
  TLLM_PROFILE=1 timeout 150 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    -p 4096 -n 16 -b 32 -r 1 --max-model-len 8192 > "$OUT/profile_7b_b32.log" 2>&1
  TLLM_PROFILE=1 timeout 100 $T bench --model bench/configs/qwen2.5-0.5b --load-format dummy --device cuda \
    -p 512 -n 64 -b 1 -r 1 --max-model-len 4096 > "$OUT/profile_05b.log" 2>&1
  for f in profile_7b_b1 profile_7b_b32 profile_05b; do
    echo "== $f"; grep -E "^\| (pp|tg)" "$OUT/$f.log"; grep "\[profile\]" "$OUT/$f.log" | head -16
  done
fi

if has moe; then
  T="$P/tinyllm"
  timeout 300 $T bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
    -p 4096 -n 64 -b 1,8,16,32,128 -r 2 --max-model-len 8192 > "$OUT/bench_30b_a3b.log" 2>&1
  timeout 150 $T bench --model bench/configs/qwen1.5-moe-a2.7b --load-format dummy --device cuda \
    -p 4096 -n 64 -b 1,8,16,32,128 -r 2 --max-model-len 8192 > "$OUT/bench_a27b.log" 2>&1
  cat "$OUT/bench_30b_a3b.log" "$OUT/bench_a27b.log" | grep -vE "^\[tinyllm info" | tail -24
fi

if has peer; then
  timeout 200 python3 scripts/device/hf_peer.py bench/configs/qwen2.5-7b --prefill 4096 --gen 128 2>&1 | tail -1 | tee "$OUT/hf_peer_7b.json"
fi
echo "== summary"; printf '%s\n' "${summary[@]}"
