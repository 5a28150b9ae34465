#!/usr/bin/env bash
# Run 111: qk_norm_rope_kv_write releases the decode attention at its entry (so attention's
# early loads also overlap where RoPE stays a kernel: Qwen3's q/k norms, quantized q|k|v).
# build/r110 (run 110's binary) against build/r111, alternated; then the landed build's rows.
set -u
source scripts/device/run_lib.sh
run_init run111 "${LIMIT:-580}"
B=build/r111
run_gtest t_attn $B/test_kernels_cuda --gtest_filter='CudaAttention.QkNorm*:CudaAttention.RopeThen*'
run_gtest t_engine $B/test_engine_gpu
run_gtest t_quant $B/test_quant_cuda
run_gtest t_moe $B/test_moe_cuda
for round in 1 2; do
  for v in r110 r111; do
    run_bench $v qwen3-8b "q3_8b_${v}_$round" -b 1
  done
done
for v in r110 r111; do
  run_bench $v qwen2.5-7b "s7_int4_$v" -b 1 --quantization int4 --quant-group-size 128
  run_bench $v qwen2.5-7b "s7_int8_$v" -b 1 --quantization int8
  run_bench $v qwen3-30b-a3b "moe_b8_$v" -b 8
done
# The landed build (r111): rows for docs/performance.md.
run_bench r111 qwen2.5-7b s7_b1 -b 1
run_bench r111 qwen2.5-7b s7_b8_32 -b 8,32
run_bench r111 qwen2.5-0.5b s05_b1 -b 1
run_bench r111 qwen2.5-1.5b s15_b1 -b 1
run_bench r111 qwen3-30b-a3b moe_b1 -b 1
run_bench r111 qwen3-8b q3_8b_b8_32 -b 8,32
timeout 120 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  -p 4096 -n 16 -d 0,4096 -b 1 -r 3 --max-model-len 8192 > "$RUN_DIR/s7_pp4096_d4096.log" 2>&1
run_log "s7_pp4096_d4096 rc=$? $(grep -E '^\| (pp|tg)' "$RUN_DIR/s7_pp4096_d4096.log" | cut -c1-70 | paste -sd' ')"
run_done
