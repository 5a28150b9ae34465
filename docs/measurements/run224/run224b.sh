#!/usr/bin/env bash
# Run 224b (session 39, an H100 again): second rounds of run 224's near-target rows (0.5B tg
# b1, 7B pp4096, 7B int4 tg b1), the rest of the MoE issue's rows on this card (30B-A3B bf16
# tg b1 / b32 / b128, pp4096; A2.7B tg b1), GroupWalk against the build before on the A2.7B
# int4 shape, the HF transformers peer line of the CUDA issue, and test_engine_gpu.
set -u
source scripts/device/run_lib.sh
run_init run224b "${LIMIT:-570}"
B=build/r224
run_bench r224 qwen2.5-0.5b 05b_b1_2 -b 1
timeout 120 $B/tinyllm bench --model bench/configs/qwen2.5-7b --load-format dummy --device cuda \
  --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 > "$RUN_DIR/7b_pp4096_2.log" 2>&1
run_log "7b_pp4096_2 rc=$? $(grep -E '^\| pp' "$RUN_DIR/7b_pp4096_2.log" | cut -c1-90 | paste -sd' ')"
RUN_BENCH_TIMEOUT=120 run_bench r224 qwen2.5-7b 7b_int4_b1_2 -b 1 --quantization int4 --quant-group-size 128
RUN_BENCH_TIMEOUT=200 run_bench r224 qwen3-30b-a3b 30b_bf16_tg -b 1,32,128
timeout 150 $B/tinyllm bench --model bench/configs/qwen3-30b-a3b --load-format dummy --device cuda \
  --max-model-len 8192 -p 4096 -n 1 -b 1 -r 3 > "$RUN_DIR/30b_pp4096.log" 2>&1
run_log "30b_pp4096 rc=$? $(grep -E '^\| pp' "$RUN_DIR/30b_pp4096.log" | cut -c1-90 | paste -sd' ')"
RUN_BENCH_TIMEOUT=120 run_bench r224 qwen1.5-moe-a2.7b a27b_bf16 -b 1,32
for v in r224a r224; do
  RUN_BENCH_TIMEOUT=120 run_bench $v qwen1.5-moe-a2.7b a27b_int4_$v -b 1 --quantization int4 --quant-group-size 128
done
RUN_TEST_TIMEOUT=100 run_gtest t_engine_gpu $B/test_engine_gpu
timeout 200 python3 scripts/device/hf_peer.py bench/configs/qwen2.5-7b --prefill 4096 --gen 128 > "$RUN_DIR/hf_peer_7b.log" 2>&1
run_log "hf_peer rc=$? $(tail -1 "$RUN_DIR/hf_peer_7b.log")"
grep -hE "^\[  FAILED|Failure" -A5 "$RUN_DIR"/t_*.log | head -30
run_done
