#!/usr/bin/env bash
# One device call of a working session: gpu tests, a per-kernel timing of decode steps
# (ncu, inside the CUDA graph), dense benchmarks, the serving workloads of the serving
# issue, and the helpers' kernel checks. Binaries from `B=build-gpu bash scripts/device/pack.sh`
# (carry build-gpu/pack). Everything lands in one tarball $OUT/logs.tar.gz plus $OUT/summary.txt.
#   STAGES="tests ncu bench serve moebench quantbench binab stackab stacktrace stacktime stream attnab peer attn quantk moek gemvk tuneab" (default all: more
#   than one 10-minute call; the session's runs 12-13 were STAGES="tests bench attn" and then
#   STAGES="serve quantbench moebench quantk moek"; the HF peer line is STAGES=peer).
set -u
P=${P:-build-gpu/pack}
OUT=${OUT:-/tmp/session_check}
L=/tmp/session_logs
STAGES=${STAGES:-tests ncu bench serve moebench quantbench peer attn quantk moek gemvk tuneab}
rm -rf "$L" && mkdir -p "$L" "$OUT"
export LD_LIBRARY_PATH="$PWD/$P/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export TLLM_TEST_SOURCE_DIR=$PWD PYTHONUNBUFFERED=1
has() { [[ " $STAGES " == *" $1 "* ]]; }
T="$P/tinyllm"
S="$OUT/summary.txt"
exec > >(tee -a "$S") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
ldd "$T" | grep "not found"
t0=$(date +%s)
stamp() { echo "-- [$(( $(date +%s) - t0 ))s] $*"; }

if has tests; then
  for t in test_kernels_cuda test_quant_cuda test_moe_cuda test_engine_gpu; do
    [[ -x "$P/$t" ]] || continue
    timeout "${TTIME:-200}" "$P/$t" --gtest_color=no > "$L/$t.log" 2>&1
    rc=$?
    stamp "$t rc=$rc $(grep -E "^\[  PASSED  \]|^\[  FAILED  \] [0-9]+ test" "$L/$t.log" | tr '\n' ' ')"
    grep -E "^\[  FAILED  \] [^0-9]|Failure" "$L/$t.log" | head -12
  done
fi

if has ncu; then
  # Kernel durations of decode steps replayed from the CUDA graph (each node timed alone,
  # so PDL overlap is not counted): 0.5B and 7B shapes, batch 1.
  for m in qwen2.5-0.5b:2600 qwen2.5-7b:2900; do
    name=${m%%:*}; skip=${m##*:}
    bash scripts/device/ncu_decode.sh bench/configs/$name "$skip" "$T" > "$L/ncu_$name.log" 2>&1
    stamp "ncu $name"; cat "$L/ncu_$name.log"
  done
fi

if has bench; then
  timeout 200 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    -p 512,4096 -n 128 -b 1,8,32 -r 3 --max-model-len 8192 > "$L/bench_7b.log" 2>&1
  stamp "bench 7b rc=$?"
  timeout 100 $T bench --model bench/configs/qwen2.5-0.5b --load-format dummy --device cuda \
    -p 512 -n 128 -b 1,32 -r 3 --max-model-len 8192 > "$L/bench_05b.log" 2>&1
  stamp "bench 0.5b rc=$?"
  timeout 100 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
    -p 16 -n 128 -d 4096 -b 1 -r 3 --max-model-len 8192 > "$L/bench_7b_depth.log" 2>&1
  stamp "bench 7b depth rc=$?"
  cat "$L/bench_7b.log" "$L/bench_05b.log" "$L/bench_7b_depth.log" | grep -E "^\| (pp|tg)|limits"
fi

if has serve; then
  # Offline throughput, nano-vllm's workload (256 seqs, in/out uniform in 100..1024, ignore_eos).
  timeout 240 $T throughput --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --iters 2 \
    > "$L/throughput_7b.log" 2>&1
  stamp "throughput 7b rc=$?"; grep -iE "throughput|tok/s" "$L/throughput_7b.log" | tail -3
  # bench-serve at 64 concurrent clients against the real server.
  PF=$(mktemp)
  $T serve --model bench/configs/qwen2.5-7b --load-format dummy --device cuda --host 127.0.0.1 --port 0 \
    --max-model-len 4096 > "$PF" 2> "$L/serve_7b.err" &
  SP=$!
  for _ in $(seq 900); do grep -q "ready in" "$PF" && break; sleep 0.2; done
  PORT=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$PF" | head -1)
  timeout 200 $T bench-serve --port "$PORT" --tokenizer bench/configs/qwen2.5-7b --num-prompts 256 \
    --max-concurrency 64 --random-input-len 512 --random-output-len 256 > "$L/bench_serve_7b_c64.log" 2>&1
  stamp "bench-serve 7b c64 rc=$?"; grep -vE "^\s*$" "$L/bench_serve_7b_c64.log" | tail -22
  kill -TERM $SP; wait $SP 2>/dev/null
  # Server overhead: HTTP streaming vs the engine driven directly, batch 1 and 64.
  timeout 240 bash bench/serve/overhead.sh "$T" bench/configs/qwen2.5-0.5b cuda "${OVERHEAD_RUNS:-1}" "1 64" --load-format dummy \
    --max-model-len 4096 > "$L/overhead_05b.log" 2>&1
  stamp "overhead 0.5b rc=$?"; cat "$L/overhead_05b.log" | tail -6
fi

if has moebench; then
  timeout 240 $T bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
    -p 4096 -n 64 -b 1,32,128 -r 1 --max-model-len 8192 > "$L/bench_30b_a3b.log" 2>&1
  stamp "bench 30b-a3b rc=$?"
  timeout 150 $T bench --model bench/configs/qwen1.5-moe-a2.7b --load-format dummy --device cuda \
    -p 4096 -n 64 -b 1,32 -r 1 --max-model-len 8192 > "$L/bench_a27b.log" 2>&1
  stamp "bench a2.7b rc=$?"
  cat "$L/bench_30b_a3b.log" "$L/bench_a27b.log" | grep -E "^\| (pp|tg)|limits"
fi

if has quantbench; then
  M=bench/configs/qwen2.5-7b
  timeout 150 $T bench --model $M --load-format dummy --device cuda --max-model-len 8192 --quantization int4 \
    --quant-group-size 128 -p 4096 -n 128 -b 1,8 -r 2 > "$L/bench_7b_int4.log" 2>&1
  stamp "bench 7b int4 rc=$?"
  timeout 120 $T bench --model $M --load-format dummy --device cuda --max-model-len 8192 --quantization int8 \
    -p 512 -n 128 -b 1,8 -r 2 > "$L/bench_7b_int8.log" 2>&1
  stamp "bench 7b int8 rc=$?"
  cat "$L/bench_7b_int4.log" "$L/bench_7b_int8.log" | grep -E "^\| (pp|tg)|limits"
fi

# Alternated A/B of an environment switch: ab STAGE OFF_ENV ON_ENV ROUNDS "MODELS" ROW_REGEX
# BENCH_ARGS... runs `tinyllm bench` per round, setting (off, on) and model, with OFF_ENV or
# ON_ENV in the environment ("" for none), logging to $L/STAGE_{off,on}_MODEL_ROUND.log.
ab() {
  local stage=$1 off_env=$2 on_env=$3 rounds=$4 models=$5 rows=$6
  shift 6
  for round in $(seq "$rounds"); do
    for v in off on; do
      for name in $models; do
        local log="$L/${stage}_${v}_${name}_$round.log"
        env $([[ $v == on ]] && echo "$on_env" || echo "$off_env") \
          timeout 100 $T bench --model bench/configs/$name --load-format dummy --device cuda "$@" > "$log" 2>&1
        stamp "$stage $v $name round $round rc=$?"
        grep -E "$rows" "$log"
      done
    done
  done
}

# The one-kernel decode step (TLLM_DECODER_STACK=1: forced on at any size) against the
# op-by-op graph (=0), batch 1.
has stackab && ab stackab TLLM_DECODER_STACK=0 TLLM_DECODER_STACK=1 "${STACK_ROUNDS:-2}" \
  "${STACK_MODELS:-qwen2.5-0.5b qwen2.5-1.5b qwen2.5-7b}" "^\| tg" --max-model-len 4096 -p 16 -n 128 -b 1 -r 2

# Per-block event times of two layers of the stack kernel (eager mode, TLLM_STACK_TRACE),
# summarised by scripts/device/stack_trace.py.
if has stacktrace; then
  for name in ${STACK_MODELS:-qwen2.5-0.5b qwen2.5-7b}; do
    f="$L/trace_$name.txt"
    TLLM_DECODER_STACK=1 TLLM_STACK_TRACE=$f timeout 150 $T bench --model bench/configs/$name \
      --load-format dummy --device cuda --enforce-eager --max-model-len 4096 -p 16 -n 128 -b 1 -r 1 \
      > "$L/stacktrace_$name.log" 2>&1
    stamp "stacktrace $name rc=$?"
    python3 scripts/device/stack_trace.py "$f" | tee "$L/trace_$name.summary"
    gzip -f "$f"
  done
fi

# The decoder stack kernel's phases (block 0's clock after each grid barrier; eager mode):
# us per layer, logged every 256 steps.
if has stacktime; then
  for name in ${STACK_MODELS:-qwen2.5-0.5b qwen3-30b-a3b}; do
    TLLM_DECODER_STACK=1 TLLM_STACK_TIMING=1 timeout 150 $T bench --model bench/configs/$name --load-format dummy \
      --device cuda --enforce-eager --max-model-len 4096 -p 16 -n 128 -b 1 -r 2 > "$L/stacktime_$name.log" 2>&1
    stamp "stacktime $name rc=$?"
    grep -E "decoder stack|^\| tg" "$L/stacktime_$name.log" | tail -3
  done
fi

# Read-only streams in the decode GEMVs' access patterns (bench_stream_cuda's header).
if has stream; then
  timeout 200 "$P/bench_stream_cuda" > "$L/stream.log" 2>&1
  stamp "bench_stream_cuda rc=$?"
  cat "$L/stream.log"
fi

# Prefill with the wgmma attention kernel (TLLM_ATTN_SM90 unset) against the mma.sync one
# (=0): 4,096-token prompts.
has attnab && ab attnab TLLM_ATTN_SM90=0 "" "${ATTN_ROUNDS:-2}" "${ATTN_MODELS:-qwen2.5-7b qwen2.5-0.5b}" \
  "^\| pp|limits" --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3

if has binab && [[ -x "${BASE:-}" ]]; then
  # Decode A/B of two builds (BASE = the binary without the change), alternated: 7B and
  # 0.5B shapes, short prompt, bf16.
  for round in 1 2; do
    for v in new base; do
      bin=$T; [[ $v == base ]] && bin=$BASE
      for m in qwen2.5-7b:1,8 qwen2.5-0.5b:1,32; do
        name=${m%%:*}
        timeout 100 $bin bench --model bench/configs/$name --load-format dummy --device cuda --max-model-len 4096 \
          -p 16 -n 128 -b ${m##*:} -r 2 > "$L/binab_${v}_${name}_$round.log" 2>&1
        stamp "binab $v $name round $round rc=$?"
        grep -E "^\| tg" "$L/binab_${v}_${name}_$round.log"
      done
    done
  done
fi

if has peer; then
  # HF transformers (eager, SDPA) on the same shape: the peer line of the CUDA issue.
  timeout 200 python3 scripts/device/hf_peer.py bench/configs/qwen2.5-7b --prefill 4096 --gen 128 2>&1 | tail -1 \
    | tee "$L/hf_peer_7b.json"
  stamp "hf peer rc=$?"
fi

if has tuneab; then
  # The cuBLASLt autotuner (kernels/cuda/linear.h) off and on, alternated: the prefill kernel
  # rows (with the tuner's choices, TLLM_LOG=debug) and the 7B prefill rows. With the tuner on,
  # the GEMM peak each binary measures is tuned as well.
  for i in 1 2; do
    for tune in 0 1; do
      if [[ $i == 1 ]]; then
        TLLM_GEMM_TUNE=$tune TLLM_LOG=debug timeout 120 "$P/bench_kernels_cuda" --prefill > "$L/kern_prefill_t${tune}_$i.log" 2>&1
        stamp "bench_kernels_cuda --prefill tune=$tune rc=$?"
        grep -E "CEILING|^gemm_|qk_norm|silu|attn_prefill|gemm tune" "$L/kern_prefill_t${tune}_$i.log" | grep -v "%$" | head -30
      fi
      # SM clock and board power every 50 ms during the run: is the prefill power-capped?
      nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 50 > "$L/clocks_t${tune}_$i.csv" &
      SMI=$!
      TLLM_GEMM_TUNE=$tune timeout 150 $T bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
        -p 512,4096 -n 16 -b 1 -r ${TUNE_REPS:-5} --max-model-len 8192 > "$L/pp_7b_t${tune}_$i.log" 2>&1
      rc=$?; kill $SMI 2>/dev/null; wait $SMI 2>/dev/null
      stamp "bench 7b pp tune=$tune rc=$rc"; grep -E "^\| pp|limits" "$L/pp_7b_t${tune}_$i.log"
      # samples drawing > 400 W (the prefill / GEMM phases): SM clock min / median, power max
      awk -F', ' '$2 > 400 {print $1, $2}' "$L/clocks_t${tune}_$i.csv" | sort -n | awk '{c[NR]=$1; if ($2 > p) p = $2}
        END {if (NR) printf "  busy samples %d: SM clock min %d MHz, median %d MHz; power max %.0f W\n", NR, c[1], c[int((NR+1)/2)], p}'
    done
  done
fi

# The kernel micro-benchmarks of the attention, quantized-GEMV and MoE paths.
for b in attn:bench_attention_cuda quantk:bench_quant_cuda moek:bench_moe_cuda gemvk:bench_kernels_cuda; do
  st=${b%%:*}; exe=$P/${b##*:}
  if has "$st" && [[ -x "$exe" ]]; then
    timeout "${KTIME:-170}" "$exe" > "$L/${b##*:}.log" 2>&1
    stamp "${b##*:} rc=$?"; grep -vE "^\s*$" "$L/${b##*:}.log" | tail -40
  fi
done

tar czf "$OUT/logs.tar.gz" -C "$L" .
stamp "done"
