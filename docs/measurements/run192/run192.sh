#!/usr/bin/env bash
# Run 192 (session 29): JSON mode and logit_bias on the CUDA backend through the engine:
# test_engine_gpu (its AsyncScheduling cases now include JSON-mode and logit-biased requests,
# async against synchronous on CUDA: JSON mode bans most of the vocabulary at each draw, the
# sampler's uploaded-inputs path), the sampler's own tests, and a server on the GPU answering
# JSON-mode requests.
set -u
source scripts/device/run_lib.sh
run_init run192 "${LIMIT:-400}"
B=build/r192
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
RUN_TEST_TIMEOUT=60 run_gtest t_sample $B/test_kernels_cuda --gtest_filter='CudaSample.*'
$B/tinyllm serve --model models/tiny-qwen2-demo --device cuda --port 18234 --host 127.0.0.1 > "$RUN_DIR/serve.log" 2>&1 &
for i in $(seq 1 100); do curl -sf localhost:18234/health > /dev/null && break; sleep 0.3; done
for s in 1 2 3; do
  curl -s localhost:18234/v1/chat/completions -H 'Content-Type: application/json' -d "{\"messages\":[{\"role\":\"user\",\"content\":\"Answer in JSON.\"}],\"response_format\":{\"type\":\"json_object\"},\"max_tokens\":60,\"seed\":$s,\"logit_bias\":{\"92\":3}}" >> "$RUN_DIR/json_mode.txt"
  echo >> "$RUN_DIR/json_mode.txt"
done
run_log "json mode over HTTP on cuda: $(grep -c '"content":"{' "$RUN_DIR/json_mode.txt") of 3 replies start an object"
kill %1
run_done
