#!/usr/bin/env bash
# Run 193 (session 29): structured output generalised (forced tool calls; JSON mode through the
# same filter) on CUDA: test_engine_gpu, and a GPU server answering a named and a "required"
# forced tool call and a JSON-mode request.
set -u
source scripts/device/run_lib.sh
run_init run193 "${LIMIT:-300}"
B=build/r193
RUN_TEST_TIMEOUT=120 run_gtest t_engine $B/test_engine_gpu
$B/tinyllm serve --model models/tiny-qwen2-demo --device cuda --port 18236 --host 127.0.0.1 > "$RUN_DIR/serve.log" 2>&1 &
for i in $(seq 1 100); do curl -sf localhost:18236/health > /dev/null && break; sleep 0.3; done
T='"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},{"type":"function","function":{"name":"now","parameters":{"type":"object"}}}]'
for tc in '{"type":"function","function":{"name":"get_weather"}}' '"required"'; do
  curl -s localhost:18236/v1/chat/completions -H 'Content-Type: application/json' -d "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],$T,\"tool_choice\":$tc,\"max_tokens\":120,\"seed\":1,\"logit_bias\":{\"92\":4}}" >> "$RUN_DIR/replies.txt"
  echo >> "$RUN_DIR/replies.txt"
done
curl -s localhost:18236/v1/chat/completions -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"JSON please"}],"response_format":{"type":"json_object"},"max_tokens":60,"seed":4}' >> "$RUN_DIR/replies.txt"
echo >> "$RUN_DIR/replies.txt"
run_log "tool calls over HTTP on cuda: $(grep -c '"finish_reason":"tool_calls"' "$RUN_DIR/replies.txt") of 2; json mode content starts an object: $(grep -c '"content":"{' "$RUN_DIR/replies.txt")"
kill %1
run_done
