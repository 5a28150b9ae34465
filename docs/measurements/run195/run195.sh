#!/usr/bin/env bash
# Run 195 (session 30): the sampler's allow_only rows (structured output hands the shorter of
# the allowed and the banned list) on CUDA: CudaSample.* against the reference and the CPU
# backend, test_engine_gpu (JSON mode / logit_bias async case through the new lists), and a GPU
# server answering json_schema, guided_choice and a forced tool call whose arguments follow the
# tool's parameters schema.
set -u
source scripts/device/run_lib.sh
run_init run195 "${LIMIT:-300}"
B=build/r195
RUN_TEST_TIMEOUT=90 run_gtest t_sample $B/test_kernels_cuda --gtest_filter='CudaSample.*'
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
$B/tinyllm serve --model models/tiny-qwen2-demo --device cuda --port 18237 --host 127.0.0.1 > "$RUN_DIR/serve.log" 2>&1 &
for i in $(seq 1 100); do curl -sf localhost:18237/health > /dev/null && break; sleep 0.3; done
post() { curl -s localhost:18237/v1/chat/completions -H 'Content-Type: application/json' -d "$1" >> "$RUN_DIR/replies.txt"; echo >> "$RUN_DIR/replies.txt"; }
S='{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},"kind":{"enum":["man","woman","child"]}},"required":["name","age","kind"]}'
for seed in 1 2 3; do
  post "{\"messages\":[{\"role\":\"user\",\"content\":\"Who was Moses? Answer in JSON.\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":$S}},\"max_tokens\":96,\"seed\":$seed,\"logit_bias\":{\"92\":3}}"
done
post '{"messages":[{"role":"user","content":"Is the sky blue?"}],"guided_choice":["yes","no","not sure"],"max_tokens":8,"seed":1}'
W='{"type":"object","properties":{"city":{"enum":["Paris","Rome"]},"days":{"type":"integer"}},"required":["city"]}'
post "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":$W}}],\"tool_choice\":\"required\",\"max_tokens\":120,\"seed\":1,\"logit_bias\":{\"92\":4}}"
run_log "json_schema replies that stopped: $(grep -c '"finish_reason":"stop"' "$RUN_DIR/replies.txt") of 4 (3 schema + 1 choice); tool calls: $(grep -c '"finish_reason":"tool_calls"' "$RUN_DIR/replies.txt") of 1"
kill %1
run_done
