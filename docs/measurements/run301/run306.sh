#!/usr/bin/env bash
# Run 306 (session 60): GGUF files on CUDA through the CLI, the build of d39299d (build/r306:
# tinyllm and three small files written by scripts/gguf/write_gguf.py): Qwen3-MoE q4_0 and
# Qwen2-MoE q8_0 (the test models qwen3_moe_hd64 / qwen2_moe; experts as slices of stacked
# blocks) and the demo model as q4_K + q6_K. Greedy ids / text on the GPU (bf16), to set beside
# the CPU's f32 ones (in the session's notes).
set -u
tar -xJf build/r306.tar.xz
source scripts/device/run_lib.sh
run_init run306 "${LIMIT:-200}"
B=build/r306
P="--prompt-ids 5,17,200,33,81,9,140,77,300,12,44 --max-tokens 12 --temperature 0 --kv-cache-memory 256MiB --ignore-eos"
for f in moe-q4_0 qwen2moe-q8_0 demo-mixed; do
  XDG_CACHE_HOME=$RUN_DIR/cache timeout 60 $B/tinyllm generate --device cuda --model $B/$f.gguf $P > $RUN_DIR/$f.out 2> $RUN_DIR/$f.err
  run_log "$f rc=$? $(head -c 200 $RUN_DIR/$f.out)"
done
rm -rf $RUN_DIR/cache
run_done
