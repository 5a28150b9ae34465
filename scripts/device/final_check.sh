#!/usr/bin/env bash
# The release run on the GPU machine, ordered by importance so a time-out loses the least:
# gpu tests, 7B dense bench, offline throughput, MoE, quantized, 0.5B. Carry build-gpu/pack.
set -u
P=${P:-build-gpu/pack}
OUT=${OUT:-/tmp/final_check}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$P/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TLLM_TEST_SOURCE_DIR=$PWD
T="$P/tinyllm"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
rows() { grep -E "^(model|limits)|^\| (pp|tg)" "$1"; }
for t in test_kernels_cuda test_engine_gpu test_moe_cuda test_quant_cuda; do
  [[ -x "$P/$t" ]] || continue
  timeout 120 "$P/$t" --gtest_color=no > "$OUT/tests_$t.log" 2>&1
  echo "== $t rc=$? $(grep -E '^\[  PASSED  \]|^\[  FAILED  \] [0-9]+ test' "$OUT/tests_$t.log" | tr '\n' ' ')"
  grep -E "^\[  FAILED  \] [^0-9]|Failure$" "$OUT/tests_$t.log" | head -6
done
grep -h "greedy steps equal\|\[moe cuda\]" "$OUT"/tests_*.log | head -10
echo "== dense 7B"
timeout 150 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  -p 512,4096 -n 128 -b 1,8,32 -r 2 --max-model-len 8192 > "$OUT/bench_7b.log" 2>&1; rows "$OUT/bench_7b.log"
timeout 60 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  -p 512 -n 128 -d 4096 -b 1 -r 1 --max-model-len 8192 > "$OUT/bench_7b_d4096.log" 2>&1; rows "$OUT/bench_7b_d4096.log" | grep tg
echo "== offline throughput 7B (256 seqs, in/out uniform 100-1024, ignore_eos)"
timeout 120 $T throughput --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --max-model-len 4096 \
  > "$OUT/throughput_7b.log" 2>&1; grep -vE "^\[tinyllm info" "$OUT/throughput_7b.log" | tail -6
echo "== MoE"
timeout 150 $T bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
  -p 4096 -n 64 -b 1,32,128 -r 1 --max-model-len 8192 > "$OUT/bench_30b_a3b.log" 2>&1; rows "$OUT/bench_30b_a3b.log"
echo "== quantized 7B"
timeout 90 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --quantization int4 \
  --quant-group-size 128 -p 4096 -n 64 -b 1 -r 1 --max-model-len 8192 > "$OUT/bench_7b_int4.log" 2>&1; rows "$OUT/bench_7b_int4.log"
timeout 80 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --quantization int8 \
  -p 512 -n 64 -b 1 -r 1 --max-model-len 8192 > "$OUT/bench_7b_int8.log" 2>&1; rows "$OUT/bench_7b_int8.log"
echo "== 0.5B and A2.7B"
timeout 50 $T bench --model bench/configs/qwen2.5-0.5b --load-format dummy --device cuda \
  -p 512 -n 128 -b 1,32 -r 2 --max-model-len 8192 > "$OUT/bench_05b.log" 2>&1; rows "$OUT/bench_05b.log"
timeout 80 $T bench --model bench/configs/qwen1.5-moe-a2.7b --load-format dummy --device cuda \
  -p 4096 -n 64 -b 1 -r 1 --max-model-len 8192 > "$OUT/bench_a27b.log" 2>&1; rows "$OUT/bench_a27b.log"
cd "$OUT" && tar czf all_logs.tar.gz *.log gpu.txt && echo done
