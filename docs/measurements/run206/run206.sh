#!/usr/bin/env bash
# Run 206 (session 33): pooling (embedding) models on CUDA, first run on a GPU (session 32 built
# them without one): GpuPooling.* (CUDA bf16 vectors against the CPU's f32 ones; the RAG
# pipeline finds a chunk's own text), the whole test_engine_gpu on the final code, and
# `tinyllm rag` end to end on CUDA with the demo model.
set -u
source scripts/device/run_lib.sh
run_init run206 "${LIMIT:-300}"
B=build/r206
RUN_TEST_TIMEOUT=150 run_gtest t_engine $B/test_engine_gpu
mkdir -p "$RUN_DIR/docs" && cp README.md docs/architecture.md "$RUN_DIR/docs/"
$B/tinyllm rag index --model models/tiny-qwen2-demo --device cuda --input "$RUN_DIR/docs" --index "$RUN_DIR/x.idx" \
  > "$RUN_DIR/rag_index.log" 2>&1
run_log "rag index rc=$? $(tail -1 "$RUN_DIR/rag_index.log")"
$B/tinyllm rag query --model models/tiny-qwen2-demo --device cuda --index "$RUN_DIR/x.idx" \
  --query "speculative decoding on the GPU" --passages 3 > "$RUN_DIR/rag_query.log" 2>/dev/null
run_log "rag query rc=$? $(head -c 300 "$RUN_DIR/rag_query.log")"
rm -f "$RUN_DIR/x.idx"
run_done
