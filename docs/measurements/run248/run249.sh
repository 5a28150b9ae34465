#!/usr/bin/env bash
# Run 249 (session 46): the sm_90a MoE grouped GEMM with a unit's idle warpgroup skipping its
# MMAs (an expert's last unit of <= 64 positions); TLLM_MOE_GEMM forcing a grouped GEMM at any T
# (bf16 crossover with the decode kernels at T = 12..32); the dequantized quantized experts from
# 256 pairs per expert on sm_90a.
#   test_moe_cuda (all); bench_moe_cuda --quant-prefill (every row); kernel timelines of the bf16
#   layer at T = 2048 and 4096; Qwen3-30B-A3B bf16 pp4096 and tg b128 (run 248's build beside it).
set -u
source scripts/device/run_lib.sh
run_init run249 "${LIMIT:-590}"
N=build/r249
RUN_TEST_TIMEOUT=200 run_gtest t_moe $N/test_moe_cuda
grep -hE "^\[  FAILED|Failure|error" -A6 "$RUN_DIR"/t_moe.log | head -40
timeout 200 $N/bench_moe_cuda --quant-prefill > "$RUN_DIR/moe_prefill.log" 2>&1
run_log "moe_prefill rc=$?"
grep -E "^   bf16 " "$RUN_DIR/moe_prefill.log" | cut -c1-80
for T in 2048 4096; do
  CUDA_INJECTION64_PATH=$PWD/build/pack/lib/libkernel_trace.so TLLM_KTRACE_OUT=$RUN_DIR/trace_moe$T.csv \
    timeout 60 $N/bench_moe_cuda --quant-prefill --scheme bf16 --tokens $T > "$RUN_DIR/trace_moe$T.log" 2>&1
  run_log "trace $T rc=$?"
done
m30() {  # m30 LABEL BUILD BENCH_ARGS...
  local n=$1 v=$2
  shift 2
  timeout 150 build/$v/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
    --max-model-len 4160 -r 3 "$@" > "$RUN_DIR/$n.log" 2>&1
  run_log "$n rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/$n.log" | cut -c1-72 | paste -sd' ')"
}
m30 30b_r249 r249 -p 4096 -n 128 -b 128
m30 30b_r248 r248 -p 4096 -n 128 -b 128
run_done
