#!/usr/bin/env bash
# Run 302 (session 59, H100): float16 checkpoints on CUDA. Run 301 found `--dtype float16`
# refused at the first linear ("needs bf16 weights"), and so was any float16 checkpoint under
# --dtype auto (auto kept f16 on CUDA). Now auto converts to bf16 on CUDA and another --dtype
# is refused before loading. Pack build/r302: tinyllm, test_engine_gpu (with
# GpuParityF16.Float16CheckpointWithAutoDtype), test_quant_cuda. Also: the demo model from a
# GGUF file on the GPU against its folder, and the 1.5B pp4096 workspace A/B of run 301 again
# (its one losing row, one reading each there), three alternations.
set -u
tar -xJf build/r302.tar.xz
source scripts/device/run_lib.sh
run_init run302 "${LIMIT:-400}"
B=build/r302
RUN_TEST_TIMEOUT=150 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=150 run_gtest t_quant $B/test_quant_cuda
python3 scripts/gguf/write_gguf.py model models/tiny-qwen2-demo "$RUN_DIR/demo-f16.gguf" --type f16 > "$RUN_DIR/gguf.log" 2>&1
for m in "$RUN_DIR/demo-f16.gguf" models/tiny-qwen2-demo; do
  XDG_CACHE_HOME=$RUN_DIR/xdg timeout 60 $B/tinyllm generate --model "$m" --device cuda --temperature 0 \
    --max-tokens 24 --prompt "And the LORD said unto Moses," >> "$RUN_DIR/gguf.log" 2>&1
  echo "rc=$?" >> "$RUN_DIR/gguf.log"
done
run_log "gguf $(grep -c 'rc=0' "$RUN_DIR/gguf.log") of 2 ran"
rm -rf "$RUN_DIR/xdg" "$RUN_DIR/demo-f16.gguf"
for r in 1 2 3; do
  for m in 1024 0; do
    TLLM_GEMM_NO_WORKSPACE_MIN_T=$m RUN_BENCH_TIMEOUT=30 run_prefill 15b_pp4096_m${m}_$r $B/tinyllm qwen2.5-1.5b 4096
  done
done
run_done
