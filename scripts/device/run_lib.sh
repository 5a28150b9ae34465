# Helpers for one-call device runs; source it from a run script:
#   source scripts/device/run_lib.sh
#   run_init run101 540           # logs under $OUT/run101, packed into $OUT/run101.tar.xz
#   run_bench base qwen2.5-7b 7b_b1_base -b 1
#   run_gtest t_attn build/new/test_kernels_cuda --gtest_filter='CudaAttention*'
#   run_trace 7b_bf16 build/new/tinyllm qwen2.5-7b
#   run_done
# The device tool returns only a few loose files and nothing of a command it stops at its
# limit, so everything goes into one archive, written at exit and also by a watchdog that
# stops the script 20 s before the limit given to run_init. Function names carry a run_
# prefix: a helper named like a command (run 97 had one called `tr`) shadows it inside every
# other helper.

run_init() {
  RUN_NAME=$1
  RUN_LIMIT=${2:-580}
  RUN_DIR=$OUT/$RUN_NAME
  RUN_T0=$(date +%s)
  mkdir -p "$RUN_DIR"
  export LD_LIBRARY_PATH=$PWD/build/pack/lib:/usr/local/cuda/lib64 TLLM_TEST_SOURCE_DIR=$PWD
  trap run_pack EXIT
  trap 'run_log "watchdog: stopping before the limit"; exit 124' TERM
  local self=$$
  # TERM to the script (its trap runs once the foreground command ends), then to its
  # children, so that the command running now ends (timeout passes TERM on to its child).
  (sleep $((RUN_LIMIT - 20)) && kill -TERM "$self" && pkill -TERM -P "$self") >/dev/null 2>&1 &
  RUN_WATCHDOG=$!
  nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader 2>/dev/null | tee "$RUN_DIR/gpu.txt"
}

run_log() { echo "-- [$(($(date +%s) - RUN_T0))s] $*" | tee -a "$RUN_DIR/progress.txt"; }

run_pack() {
  if [ -n "${RUN_WATCHDOG:-}" ]; then
    pkill -P "$RUN_WATCHDOG" 2>/dev/null  # its sleep
    kill "$RUN_WATCHDOG" 2>/dev/null
  fi
  [ -d "$RUN_DIR" ] || return 0
  tar -C "$OUT" -cJf "$OUT/$RUN_NAME.tar.xz" "$RUN_NAME" && rm -rf "$RUN_DIR"
}

# run_bench VARIANT MODEL LABEL [bench args]: build/VARIANT/tinyllm bench on
# bench/configs/MODEL (random weights), tg128 -p 16 -r 3; prints the tg rows.
run_bench() {
  local v=$1 m=$2 n=$3
  shift 3
  timeout "${RUN_BENCH_TIMEOUT:-90}" "build/$v/tinyllm" bench --model "bench/configs/$m" --load-format dummy \
    --device cuda --max-model-len 4096 -p 16 -n 128 -r 3 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| tg' "$RUN_DIR/$n.log" | cut -c1-70 | paste -sd' ')"
}

# run_prefill LABEL BINARY MODEL PROMPT [bench args]: BINARY (a tinyllm) bench on
# bench/configs/MODEL (random weights), one prompt of PROMPT tokens, -r 3; prints the pp row.
# Extra arguments go to the bench (e.g. --max-num-batched-tokens 512 for chunked prefill);
# environment switches go in front of the call (TLLM_X=0 run_prefill ...).
run_prefill() {
  local n=$1 bin=$2 m=$3 t=$4
  shift 4
  timeout "${RUN_BENCH_TIMEOUT:-150}" "$bin" bench --model "bench/configs/$m" --load-format dummy --device cuda \
    --max-model-len $((t + 64)) -p "$t" -n 1 -b 1 -r 3 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| pp' "$RUN_DIR/$n.log" | cut -c1-100 | paste -sd' ')"
}

# run_attn_quick LABEL DIR: DIR/bench_attention_cuda --quick; prints its prefill_sm90 rows.
# Environment switches go in front of the call (TLLM_ATTN_PINGPONG=1 run_attn_quick ...).
run_attn_quick() {
  local n=$1 dir=$2
  timeout 60 "$dir/bench_attention_cuda" --quick > "$RUN_DIR/attn_$n.log" 2>&1
  run_log "attn_$n rc=$? $(grep -E ' prefill_sm90 ' "$RUN_DIR/attn_$n.log" | cut -c1-80 | paste -sd' ')"
}

# run_gtest LABEL BINARY [args]: a gtest binary; prints its PASSED / FAILED lines.
run_gtest() {
  local n=$1
  shift
  timeout "${RUN_TEST_TIMEOUT:-240}" "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\[  (PASSED|FAILED)' "$RUN_DIR/$n.log" | paste -sd' ')"
}

# run_trace LABEL BINARY MODEL [bench args]: the kernel timeline (bench/cuda/kernel_trace.cpp,
# carried as build/pack/lib/libkernel_trace.so with libcupti.so.13) of a short decode bench.
run_trace() {
  local n=$1 bin=$2 m=$3
  shift 3
  CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$RUN_DIR/trace_$n.csv \
    timeout "${RUN_BENCH_TIMEOUT:-90}" "$bin" bench --model "bench/configs/$m" --load-format dummy --device cuda \
    --max-model-len 4096 -b 1 -p 16 -n 64 -r 1 "$@" > "$RUN_DIR/trace_$n.log" 2>&1
  run_log "trace $n rc=$? $(grep -E '^\| tg' "$RUN_DIR/trace_$n.log" | cut -c1-70 | paste -sd' ')"
}

run_done() { run_log done; }
