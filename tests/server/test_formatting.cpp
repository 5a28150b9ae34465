// Cheap JSON text, SSE framing, logprobs shapes and Prometheus exposition. Outputs are
// checked by parsing them back with nlohmann::json (the reference JSON parser) and, for
// invalid UTF-8, against what Python's bytes.decode("utf-8", errors="replace") gives.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "server/json_text.h"
#include "server/logprobs.h"
#include "server/metrics.h"
#include "server/streaming.h"

namespace tllm {
namespace {

using nlohmann::json;

std::string as_json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonText, ValidStringsRoundTrip) {
  const std::vector<std::string> samples = {
      "", "plain", "quote \" backslash \\ slash /", "ctl \n\r\t\b\f \x01\x1f", "caf\xc3\xa9",
      "\xe4\xb8\xad\xe6\x96\x87", "\xf0\x9f\x98\x80 emoji", std::string("nul \0 inside", 12)};
  for (const auto& s : samples) {
    const std::string q = as_json_string(s);
    EXPECT_EQ(json::parse(q).get<std::string>(), s) << q;
  }
}

TEST(JsonText, InvalidUtf8BecomesReplacementLikePython) {
  // Expected values: Python 3 bytes.decode("utf-8", errors="replace").
  const std::string R = "\xef\xbf\xbd";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\xff" "b", "a" + R + "b"},
      {"\xe2\x82", R},                      // a cut-off 3-byte character: one U+FFFD
      {"\xf0\x9f\x98", R},                  // a cut-off 4-byte character: one U+FFFD
      {"\xed\xa0\x80", R + R + R},          // a surrogate: three
      {"\xc0\xaf", R + R},                  // an overlong: two
      {"\xe2\x82x", R + "x"},
      {"\x80\x80", R + R},
      {"ok\xf4\x90\x80\x80", "ok" + R + R + R + R},  // above U+10FFFF
  };
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(sanitize_utf8(in), want);
    EXPECT_EQ(json::parse(as_json_string(in)).get<std::string>(), want);
    EXPECT_FALSE(is_valid_utf8(in));
  }
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9"));
  EXPECT_EQ(utf8_length("caf\xc3\xa9"), 4u);
}

TEST(JsonText, Numbers) {
  auto num = [](double v) {
    std::string s;
    append_json_number(s, v);
    return s;
  };
  EXPECT_EQ(num(-1.0), "-1.0");
  EXPECT_EQ(json::parse(num(-0.123456789)).get<double>(), -0.123456789);
  EXPECT_EQ(num(-INFINITY), "-9999.0");  // vLLM's stand-in for -inf
  EXPECT_EQ(num(NAN), "-9999.0");
  std::string s;
  append_json_number(s, int64_t{-42});
  EXPECT_EQ(s, "-42");
}

TEST(Sse, ChunkEventsAreDataLinesOfJson) {
  ChunkWriter w("chatcmpl-1", "chat.completion.chunk", 1700000000, "my \"model\"");
  std::string out;
  w.append_choice_event(out, R"({"index":0,"delta":{"content":"hi"},"finish_reason":null})");
  w.append_usage_event(out, R"({"prompt_tokens":1,"completion_tokens":2,"total_tokens":3})");
  out += kSseDone;
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < out.size()) {
    const size_t end = out.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    const std::string ev = out.substr(pos, end - pos);
    ASSERT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    ASSERT_EQ(ev.find('\n'), std::string::npos) << "one line per event";
    events.push_back(ev.substr(6));
    pos = end + 2;
  }
  ASSERT_EQ(events.size(), 3u);
  const auto c = json::parse(events[0]);
  EXPECT_EQ(c["id"], "chatcmpl-1");
  EXPECT_EQ(c["object"], "chat.completion.chunk");
  EXPECT_EQ(c["created"], 1700000000);
  EXPECT_EQ(c["model"], "my \"model\"");
  EXPECT_EQ(c["choices"][0]["delta"]["content"], "hi");
  const auto u = json::parse(events[1]);
  EXPECT_TRUE(u["choices"].is_array() && u["choices"].empty());
  EXPECT_EQ(u["usage"]["total_tokens"], 3);
  EXPECT_EQ(u["id"], "chatcmpl-1");
  EXPECT_EQ(events[2], "[DONE]");
}

// Token 0 = "Hi", 1 = " there", 2 = the first two bytes of "€" (E2 82 AC), 3 = special.
TokenTable test_table() {
  return TokenTable(4, [](int32_t id) -> std::string {
    switch (id) {
      case 0: return "Hi";
      case 1: return " there";
      case 2: return "\xe2\x82";
      default: return "<|im_end|>";
    }
  });
}

TEST(Logprobs, ChatShape) {
  const TokenTable table = test_table();
  LogprobStyle style{&table, false};
  std::vector<TokenLogprob> lps(2);
  lps[0] = {0, -0.5f, {{0, -0.5f}, {1, -1.5f}, {3, -3.0f}}};
  lps[1] = {2, -2.0f, {{1, -0.25f}, {2, -2.0f}}};
  std::string out;
  append_chat_logprobs(out, lps, 2, style);
  const auto j = json::parse(out);
  ASSERT_EQ(j["content"].size(), 2u);
  EXPECT_EQ(j["content"][0]["token"], "Hi");
  EXPECT_FLOAT_EQ(j["content"][0]["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(j["content"][0]["bytes"], json::array({72, 105}));
  ASSERT_EQ(j["content"][0]["top_logprobs"].size(), 2u);  // top_logprobs = 2 of 3
  EXPECT_EQ(j["content"][0]["top_logprobs"][1]["token"], " there");
  // A partial character: U+FFFD in "token", the raw bytes in "bytes" (as OpenAI does).
  EXPECT_EQ(j["content"][1]["token"], "\xef\xbf\xbd");
  EXPECT_EQ(j["content"][1]["bytes"], json::array({0xe2, 0x82}));

  style.tokens_as_ids = true;
  out.clear();
  append_chat_logprobs(out, {lps[0]}, 0, style);
  const auto k = json::parse(out);
  EXPECT_EQ(k["content"][0]["token"], "token_id:0");
  EXPECT_TRUE(k["content"][0]["top_logprobs"].empty());
}

TEST(Logprobs, LegacyShapeWithEchoAndOffsets) {
  const TokenTable table = test_table();
  LegacyLogprobs lp(LogprobStyle{&table, false});
  std::vector<std::optional<TokenLogprob>> prompt(2);
  prompt[1] = TokenLogprob{1, -1.0f, {{0, -0.7f}}};
  lp.add_prompt({0, 1}, prompt);
  lp.add(TokenLogprob{3, -0.1f, {{3, -0.1f}}});
  std::string out;
  lp.append_json(out);
  const auto j = json::parse(out);
  EXPECT_EQ(j["tokens"], json::array({"Hi", " there", "<|im_end|>"}));
  EXPECT_TRUE(j["token_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(j["token_logprobs"][1].get<float>(), -1.0f);
  EXPECT_TRUE(j["top_logprobs"][0].is_null());
  // The chosen token joins the top dict when it is not among the alternatives.
  EXPECT_EQ(j["top_logprobs"][1].size(), 2u);
  EXPECT_TRUE(j["top_logprobs"][1].contains(" there"));
  EXPECT_EQ(j["top_logprobs"][2].size(), 1u);
  EXPECT_EQ(j["text_offset"], json::array({0, 2, 8}));

  // Streaming: after clear() the offsets keep counting.
  lp.clear();
  EXPECT_TRUE(lp.empty());
  lp.add(TokenLogprob{0, -0.2f, {}});
  out.clear();
  lp.append_json(out);
  EXPECT_EQ(json::parse(out)["text_offset"], json::array({18}));
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Histogram h({0.01, 0.1, 1.0});
  for (double v : {0.005, 0.01, 0.05, 0.5, 5.0}) h.observe(v);
  std::string out;
  h.render(out, "x_seconds", "model_name=\"m\"");
  EXPECT_NE(out.find("x_seconds_bucket{le=\"0.01\",model_name=\"m\"} 2.0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{le=\"0.1\",model_name=\"m\"} 3.0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{le=\"1.0\",model_name=\"m\"} 4.0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 5.0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_count{model_name=\"m\"} 5.0\n"), std::string::npos) << out;
  EXPECT_EQ(h.count(), 5u);
  EXPECT_NEAR(h.sum(), 5.565, 1e-12);
}

TEST(Metrics, ExpositionHasVllmNamesAndValidLines) {
  ServerMetrics m("tiny \"q\"");
  m.time_to_first_token.observe(0.02);
  m.inter_token_latency.observe(0.004);
  m.e2e_request_latency.observe(1.2);
  m.count_finished(FinishReason::Stop);
  m.count_http(200);
  EngineStats s;
  s.num_running = 3;
  s.num_waiting = 2;
  s.num_kv_blocks = 100;
  s.num_free_kv_blocks = 60;
  s.num_cached_free_blocks = 15;
  s.prefix_cache_queries = 1000;
  s.prefix_cache_hits = 250;
  s.prompt_tokens_total = 1234;
  s.generation_tokens_total = 567;
  for (int tokens : {1, 1, 1, 100, 20000}) s.count_step(tokens);
  EngineConfig cfg;
  cfg.block_size = 32;
  cfg.enable_prefix_caching = false;
  m.set_cache_config(cfg, 100);
  const std::string text = m.render(&s);

  // Prometheus text format 0.0.4: comments, or `name{labels} value`.
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*\{([a-zA-Z_]+="([^"\\]|\\.)*",?)*\} [-+]?([0-9.eE+-]+|Inf)$)");
  std::istringstream lines(text);
  std::string line;
  std::map<std::string, std::string> values;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    values[line.substr(0, line.rfind(' '))] = line.substr(line.rfind(' ') + 1);
  }
  const std::string L = "{model_name=\"tiny \\\"q\\\"\"}";
  EXPECT_EQ(values["vllm:num_requests_running" + L], "3.0");
  EXPECT_EQ(values["vllm:num_requests_waiting" + L], "2.0");
  EXPECT_EQ(values["vllm:kv_cache_usage_perc" + L], "0.25");
  EXPECT_EQ(values["vllm:prefix_cache_queries_total" + L], "1000.0");
  EXPECT_EQ(values["vllm:prefix_cache_hits_total" + L], "250.0");
  EXPECT_EQ(values["vllm:prompt_tokens_total" + L], "1234.0");
  EXPECT_EQ(values["vllm:generation_tokens_total" + L], "567.0");
  EXPECT_EQ(values["vllm:time_to_first_token_seconds_count" + L], "1.0");
  EXPECT_EQ(values["vllm:inter_token_latency_seconds_count" + L], "1.0");
  EXPECT_EQ(values["vllm:e2e_request_latency_seconds_count" + L], "1.0");
  // Tokens per engine step in vLLM's buckets: three steps of 1, one of 100 (le 128), one above
  // the last bound (16384).
  const std::string LI = "model_name=\"tiny \\\"q\\\"\"}";
  EXPECT_EQ(values["vllm:iteration_tokens_total_bucket{le=\"1.0\"," + LI], "3.0");
  EXPECT_EQ(values["vllm:iteration_tokens_total_bucket{le=\"64.0\"," + LI], "3.0");
  EXPECT_EQ(values["vllm:iteration_tokens_total_bucket{le=\"128.0\"," + LI], "4.0");
  EXPECT_EQ(values["vllm:iteration_tokens_total_bucket{le=\"16384.0\"," + LI], "4.0");
  EXPECT_EQ(values["vllm:iteration_tokens_total_bucket{le=\"+Inf\"," + LI], "5.0");
  EXPECT_EQ(values["vllm:iteration_tokens_total_count" + L], "5.0");
  EXPECT_EQ(values["vllm:iteration_tokens_total_sum" + L], "20103.0");
  EXPECT_EQ(values["vllm:cache_config_info{model_name=\"tiny \\\"q\\\"\",block_size=\"32\",cache_dtype=\"auto\","
                   "enable_prefix_caching=\"False\",gpu_memory_utilization=\"0.9\",num_gpu_blocks=\"100\","
                   "device=\"cpu\"}"],
            "1.0");
  for (const char* t : {"# TYPE vllm:num_requests_running gauge", "# TYPE vllm:kv_cache_usage_perc gauge",
                        "# TYPE vllm:prompt_tokens_total counter", "# TYPE vllm:generation_tokens_total counter",
                        "# TYPE vllm:prefix_cache_queries_total counter", "# TYPE vllm:prefix_cache_hits_total counter",
                        "# TYPE vllm:time_to_first_token_seconds histogram",
                        "# TYPE vllm:inter_token_latency_seconds histogram",
                        "# TYPE vllm:e2e_request_latency_seconds histogram",
                        "# TYPE vllm:iteration_tokens_total histogram", "# TYPE vllm:cache_config_info gauge"})
    EXPECT_NE(text.find(t), std::string::npos) << t;
  // Loading (no engine yet): the same names, zeros.
  const std::string empty = m.render(nullptr);
  EXPECT_NE(empty.find("vllm:num_requests_running{model_name="), std::string::npos);
  EXPECT_NE(empty.find("vllm:iteration_tokens_total_count{model_name="), std::string::npos);
  EXPECT_EQ(empty.find("vllm:cache_config_info"), std::string::npos) << "no cache before the model loads";
}

}  // namespace
}  // namespace tllm
