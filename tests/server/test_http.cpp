// `tinyllm serve` as users run it: the real binary on a loopback port with the shipped tiny
// model on CPU, driven over HTTP. Responses are checked against LLMEngine, Tokenizer and
// ChatTemplate run in this process on the same model (the engine driven directly is the
// reference for what the server must return).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "../engine/nan_model.h"
#include "../engine/schema_oracle.h"
#include "../io/fake_hub.h"
#include "core/timer.h"
#include "engine/engine.h"
#include "engine/grammar.h"
#include "engine/json_schema.h"
#include "engine/regex.h"
#include "server/beam_search.h"
#include "server/sse_client.h"
#include "server_process.h"
#include "sse_events.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

using nlohmann::json;
using testing::ServerProcess;

constexpr const char* kThreads = "2";

struct Reply {
  int status = 0;
  json body;
  std::string raw;
};

Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.raw = r->body;
  out.body = json::parse(r->body, nullptr, false);
  return out;
}

Reply post(const ServerProcess& s, const std::string& path, const std::string& body, const httplib::Headers& h = {}) {
  auto c = s.client();
  return to_reply(c.Post(path.c_str(), h, body, "application/json"));
}
Reply post(const ServerProcess& s, const std::string& path, const json& body) { return post(s, path, body.dump()); }
Reply get(const ServerProcess& s, const std::string& path, const httplib::Headers& h = {}) {
  auto c = s.client();
  return to_reply(c.Get(path.c_str(), h));
}

// SSE payloads of one streaming request (without [DONE]); `done` says [DONE] came last.
struct Stream {
  int status = 0;
  std::vector<json> chunks;
  bool done = false;
};
Stream stream(const ServerProcess& s, const std::string& path, const json& body) {
  Stream out;
  SseClient client(s.url(), 120);
  auto r = client.post(path, body.dump(), [&](std::string_view data) {
    if (data == "[DONE]") {
      out.done = true;
    } else {
      EXPECT_FALSE(out.done) << "data after [DONE]";
      out.chunks.push_back(json::parse(data));
    }
    return true;
  });
  out.status = r.status;
  return out;
}

// Usage without prompt_tokens_details: cached_tokens depends on what ran before.
json counts(json usage) {
  EXPECT_LE(usage["prompt_tokens_details"]["cached_tokens"].get<int>(), usage["prompt_tokens"].get<int>());
  usage.erase("prompt_tokens_details");
  return usage;
}

// ---- the shared server and the in-process reference ---------------------------------------

class Http : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = testing::tiny_model_dir();
    if (model_dir_.empty()) return;
    server_ = new ServerProcess({"--model", model_dir_, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                                 "127.0.0.1", "--port", "0", "--served-model-name", "tiny", "tiny-alias",
                                 "--enable-debug-endpoints", "--max-num-seqs", "96"});
    ASSERT_TRUE(server_->wait_healthy());
    EngineConfig c;
    c.model_dir = model_dir_;
    c.device = "cpu";
    c.threads = std::stoi(kThreads);
    c.kv_cache_memory = 256u << 20;
    reference_ = new LLMEngine(c);
  }
  static void TearDownTestSuite() {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << "serve should exit 0 on SIGTERM";
    }
    delete server_;
    delete reference_;
    server_ = nullptr;
    reference_ = nullptr;
  }
  void SetUp() override {
    if (model_dir_.empty()) GTEST_SKIP() << "tiny-qwen2-demo not found";
  }

  static const ServerProcess& server() { return *server_; }
  static LLMEngine& reference() { return *reference_; }
  static const Tokenizer& tok() { return *reference_->tokenizer(); }

  // What the engine itself generates (greedy unless params say otherwise).
  static LLMEngine::Completion direct(const std::vector<int32_t>& prompt, SamplingParams p) {
    return reference().generate({prompt}, {p})[0];
  }
  static SamplingParams greedy(int max_tokens, int logprobs = -1) {
    SamplingParams p;
    p.temperature = 0.0f;
    p.max_tokens = max_tokens;
    p.logprobs = logprobs;
    return p;
  }

  static inline std::string model_dir_;
  static inline ServerProcess* server_ = nullptr;
  static inline LLMEngine* reference_ = nullptr;
};

const std::string kPrompt = "And the LORD said unto Moses,";

TEST_F(Http, HealthModelsVersion) {
  EXPECT_EQ(get(server(), "/health").status, 200);
  EXPECT_EQ(get(server(), "/ping").status, 200);
  EXPECT_EQ(get(server(), "/version").status, 200);
  const Reply m = get(server(), "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.body["object"], "list");
  ASSERT_EQ(m.body["data"].size(), 2u);
  EXPECT_EQ(m.body["data"][0]["id"], "tiny");
  EXPECT_EQ(m.body["data"][1]["id"], "tiny-alias");
  EXPECT_EQ(m.body["data"][0]["object"], "model");
  EXPECT_EQ(m.body["data"][0]["max_model_len"], reference().max_model_len());
  // One model by name (OpenAI's retrieve): the list's object; an unknown name is a 404.
  for (int i = 0; i < 2; ++i) {
    const Reply one = get(server(), "/v1/models/" + m.body["data"][i]["id"].get<std::string>());
    ASSERT_EQ(one.status, 200) << one.raw;
    EXPECT_EQ(one.body, m.body["data"][i]);
  }
  const Reply unknown = get(server(), "/v1/models/Qwen/Qwen2.5-7B");
  EXPECT_EQ(unknown.status, 404) << unknown.raw;
  EXPECT_EQ(unknown.body["error"]["code"], "model_not_found");
}

TEST_F(Http, CompletionMatchesTheEngine) {
  const auto want = direct(tok().encode(kPrompt, true), greedy(16));
  const Reply r = post(server(), "/v1/completions",
                       json{{"model", "tiny"}, {"prompt", kPrompt}, {"max_tokens", 16}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "text_completion");
  EXPECT_EQ(r.body["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(r.body["model"], "tiny");
  EXPECT_TRUE(r.body["created"].is_number_integer());
  ASSERT_EQ(r.body["choices"].size(), 1u);
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["text"], want.text);
  EXPECT_EQ(c["finish_reason"], finish_reason_name(want.finish_reason));
  EXPECT_TRUE(c["logprobs"].is_null());
  const json& u = r.body["usage"];
  EXPECT_EQ(u["prompt_tokens"], tok().encode(kPrompt, true).size());
  EXPECT_EQ(u["completion_tokens"], want.token_ids.size());
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  EXPECT_TRUE(u["prompt_tokens_details"]["cached_tokens"].is_number_integer());

  // The alias and no model at all serve the same model.
  const Reply alias = post(server(), "/v1/completions", json{{"model", "tiny-alias"}, {"prompt", kPrompt},
                                                               {"max_tokens", 16}, {"temperature", 0}});
  EXPECT_EQ(alias.body["choices"][0]["text"], want.text);
  const Reply none = post(server(), "/v1/completions", json{{"prompt", kPrompt}, {"max_tokens", 16}, {"temperature", 0}});
  EXPECT_EQ(none.body["choices"][0]["text"], want.text);
}

// OpenAI's best_of: of best_of seeded samples (the seeds of n = best_of choices), the n with
// the highest mean logprob per token, best first; the engine's own samples are the reference.
TEST_F(Http, BestOfKeepsTheMostLikelySamples) {
  const int best_of = 5, n = 2, seed = 1234;
  const std::vector<int32_t> prompt = tok().encode(kPrompt, true);
  std::vector<std::pair<double, std::string>> samples;
  for (int i = 0; i < best_of; ++i) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.max_tokens = 8;
    p.logprobs = 0;
    p.seed = static_cast<uint64_t>(seed + i);
    const auto c = direct(prompt, p);
    double sum = 0.0;
    for (const auto& t : c.logprobs) sum += t.logprob;
    samples.push_back({sum / static_cast<double>(c.logprobs.size()), c.text});
  }
  std::stable_sort(samples.begin(), samples.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const bool logprobs : {false, true}) {
    // top_p / top_k given: the model's generation_config would otherwise narrow the draw.
    json body = {{"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 1.0}, {"top_p", 1.0}, {"top_k", -1},
                 {"seed", seed}, {"n", n}, {"best_of", best_of}};
    if (logprobs) body["logprobs"] = 1;
    const Reply r = post(server(), "/v1/completions", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    ASSERT_EQ(r.body["choices"].size(), static_cast<size_t>(n));
    int tokens = 0;
    for (int i = 0; i < n; ++i) {
      const json& c = r.body["choices"][i];
      EXPECT_EQ(c["index"], i);
      EXPECT_EQ(c["text"], samples[static_cast<size_t>(i)].second) << i;
      EXPECT_EQ(c["logprobs"].is_null(), !logprobs);
      if (logprobs) {
        double sum = 0.0;
        for (const json& lp : c["logprobs"]["token_logprobs"]) sum += lp.get<double>();
        EXPECT_NEAR(sum / c["logprobs"]["token_logprobs"].size(), samples[static_cast<size_t>(i)].first, 1e-4);
        tokens += static_cast<int>(c["logprobs"]["tokens"].size());
      }
    }
    if (logprobs) {
      EXPECT_EQ(r.body["usage"]["completion_tokens"], tokens);
    }
  }
}

// vLLM's use_beam_search: the server's beams are what the search of server/beam_search.h
// finds with the in-process engine's logprobs (completions, several prompts, and chat); width
// 1 with ignore_eos is greedy decoding; what the search cannot honour is a 400.
TEST_F(Http, BeamSearchFollowsTheEnginesLogprobs) {
  std::vector<int32_t> eos;
  for (int t : reference().generation_config().eos_token_ids) eos.push_back(t);
  for (int t : reference().model_config().eos_token_ids) eos.push_back(t);
  auto expected = [&](const std::vector<int32_t>& prompt, int width, int max_tokens, double penalty) {
    BeamSearchParams p;
    p.beam_width = width;
    p.max_tokens = max_tokens;
    p.length_penalty = penalty;
    auto step = [&](const std::vector<std::vector<int32_t>>& beams) {
      std::vector<std::vector<std::pair<int32_t, float>>> next;
      for (const auto& b : beams) {
        std::vector<int32_t> seq = prompt;
        seq.insert(seq.end(), b.begin(), b.end());
        next.push_back(direct(seq, greedy(1, 2 * width)).logprobs.at(0).top);
      }
      return next;
    };
    std::vector<std::string> texts;
    for (const Beam& b : beam_search(static_cast<int>(prompt.size()), p, eos, step))
      texts.push_back(tok().decode(std::vector<int32_t>(b.tokens.begin(), b.tokens.end() - (b.ended ? 1 : 0)), true));
    return texts;
  };
  const std::string other = "In the beginning";
  const Reply r = post(server(), "/v1/completions",
                       json{{"prompt", {kPrompt, other}}, {"max_tokens", 6}, {"n", 3}, {"use_beam_search", true},
                            {"length_penalty", 0.5}, {"early_stopping", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["choices"].size(), 6u);
  const auto want0 = expected(tok().encode(kPrompt, true), 3, 6, 0.5);
  const auto want1 = expected(tok().encode(other, true), 3, 6, 0.5);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(r.body["choices"][i]["index"], i);
    EXPECT_EQ(r.body["choices"][i]["text"], (i < 3 ? want0 : want1)[i % 3]) << i;
  }
  EXPECT_NE(want0[0], want0[1]);
  // Width 1 without eos: the greedy tokens.
  const Reply one = post(server(), "/v1/completions",
                         json{{"prompt", kPrompt}, {"max_tokens", 10}, {"use_beam_search", true}, {"ignore_eos", true}});
  ASSERT_EQ(one.status, 200) << one.raw;
  SamplingParams g = greedy(10);
  g.ignore_eos = true;
  EXPECT_EQ(one.body["choices"][0]["text"], direct(tok().encode(kPrompt, true), g).text);
  EXPECT_EQ(one.body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(one.body["usage"]["completion_tokens"], 10);
  // Chat: n beams as n messages, the prompt being the rendered conversation.
  const json messages = {{{"role", "user"}, {"content", "Tell me a fortune."}}};
  const Reply chat = post(server(), "/v1/chat/completions",
                          json{{"messages", messages}, {"max_tokens", 5}, {"n", 2}, {"use_beam_search", true}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  const Reply rendered = post(server(), "/tokenize", json{{"messages", messages}});
  ASSERT_EQ(rendered.status, 200) << rendered.raw;
  const auto want_chat = expected(rendered.body["tokens"].get<std::vector<int32_t>>(), 2, 5, 1.0);
  ASSERT_EQ(chat.body["choices"].size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(chat.body["choices"][i]["message"]["content"], want_chat[i]) << i;

  const std::vector<std::pair<json, std::string>> refused = {
      {{{"stream", true}}, "stream"},
      {{{"n", 11}}, "n"},
      {{{"logprobs", 2}}, "logprobs"},
      {{{"stop", "x"}}, "stop"},
      {{{"min_tokens", 2}}, "min_tokens"},
      {{{"presence_penalty", 0.5}}, "presence_penalty"},
      {{{"response_format", {{"type", "json_object"}}}}, "response_format"},
      {{{"length_penalty", "long"}}, "length_penalty"},
  };
  for (const auto& [extra, param] : refused) {
    json body = {{"prompt", kPrompt}, {"max_tokens", 4}, {"use_beam_search", true}};
    for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
    const Reply bad = post(server(), "/v1/completions", body);
    EXPECT_EQ(bad.status, 400) << body << " " << bad.raw;
    EXPECT_EQ(bad.body["error"]["param"], param) << body;
  }
}

// vLLM's cache_salt: the prefix cache serves a prompt again within one salt only (and
// unsalted prompts among themselves); the text is the same either way.
TEST_F(Http, CacheSaltSeparatesThePrefixCache) {
  const std::string prompt = std::string(kPrompt) + " cache salt " + std::to_string(std::random_device{}()) +
                             " and then a few more words so that the prompt fills several blocks of the cache.";
  auto run = [&](const std::optional<std::string>& salt, const std::string& route) {
    json body = {{"max_tokens", 6}, {"temperature", 0}};
    if (route == "/v1/completions") body["prompt"] = prompt;
    else body["messages"] = {{{"role", "user"}, {"content", prompt}}};
    if (salt) body["cache_salt"] = *salt;
    const Reply r = post(server(), route, body);
    EXPECT_EQ(r.status, 200) << r.raw;
    const json& c = r.body["choices"][0];
    return std::make_pair(r.body["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(),
                          route == "/v1/completions" ? c["text"].get<std::string>() : c["message"]["content"].get<std::string>());
  };
  for (const std::string route : {"/v1/completions", "/v1/chat/completions"}) {
    SCOPED_TRACE(route);
    const auto first = run("tenant-a", route);
    EXPECT_EQ(first.first, 0);
    const auto again = run("tenant-a", route);
    EXPECT_GT(again.first, 0);
    EXPECT_EQ(again.second, first.second);
    const auto other = run("tenant-b", route);
    EXPECT_EQ(other.first, 0);
    EXPECT_EQ(other.second, first.second);
    // Unsalted: not the salted blocks (at most the chat template's opening, which other
    // unsalted requests share), then the whole prefix again.
    EXPECT_LT(run(std::nullopt, route).first, again.first);
    EXPECT_EQ(run(std::nullopt, route).first, again.first);
  }
  for (const json& bad : {json(""), json(5)}) {
    const Reply r = post(server(), "/v1/completions", json{{"prompt", "x"}, {"cache_salt", bad}});
    EXPECT_EQ(r.status, 400) << r.raw;
    EXPECT_EQ(r.body["error"]["param"], "cache_salt");
  }
}

// logit_bias (OpenAI's {"token id": bias}) steers the draw as the engine does with the same
// biases: +100 on one token makes greedy decoding repeat it, -100 on the greedy choice
// removes it; sampled draws with a seed equal the engine's.
TEST_F(Http, LogitBiasSteersTheDraw) {
  const std::vector<int32_t> prompt = tok().encode(kPrompt, true);
  const auto plain = direct(prompt, greedy(4));
  ASSERT_FALSE(plain.token_ids.empty());
  const int32_t pushed = plain.token_ids[0] == 1000 ? 1001 : 1000;
  struct Case {
    json bias;
    std::vector<std::pair<int32_t, float>> engine_bias;
    float temperature;
  };
  const std::vector<Case> cases = {
      {json{{std::to_string(pushed), 100}}, {{pushed, 100.0f}}, 0.0f},
      {json{{std::to_string(plain.token_ids[0]), -100}}, {{plain.token_ids[0], -100.0f}}, 0.0f},
      // Out of [-100, 100]: clamped, as vLLM does.
      {json{{std::to_string(plain.token_ids[0]), -1e9}, {"7", 2.5}}, {{7, 2.5f}, {plain.token_ids[0], -100.0f}}, 0.8f},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.bias.dump());
    SamplingParams p = greedy(4);
    p.temperature = c.temperature;
    p.seed = 17;
    p.logit_bias = c.engine_bias;
    const auto want = direct(prompt, p);
    for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
      json body = {{"max_tokens", 4}, {"temperature", c.temperature}, {"seed", 17}, {"logit_bias", c.bias}};
      if (std::string(path) == "/v1/completions") {
        body["prompt"] = prompt;
      } else {
        body["messages"] = {{{"role", "user"}, {"content", kPrompt}}};
      }
      const Reply r = post(server(), path, body);
      ASSERT_EQ(r.status, 200) << r.raw;
      if (std::string(path) == "/v1/completions") {
        EXPECT_EQ(r.body["choices"][0]["text"], want.text);
      } else if (c.engine_bias.size() == 1 && c.engine_bias[0].second > 0) {
        EXPECT_EQ(r.body["choices"][0]["message"]["content"], tok().decode(std::vector<int32_t>(4, pushed)));
      }
    }
    if (c.temperature == 0.0f && c.engine_bias[0].second > 0) {
      EXPECT_EQ(want.token_ids, (std::vector<int32_t>{pushed, pushed, pushed, pushed}));
    } else if (c.temperature == 0.0f) {
      EXPECT_NE(want.token_ids[0], plain.token_ids[0]);
    }
  }
}

// response_format with tools under tool_choice "auto": the model may call a tool or answer in
// the format, as OpenAI's API allows (before, the format alone was enforced and no call could
// come). A bias toward "<" makes the draw take the call; toward "{" the answer.
TEST_F(Http, ResponseFormatWithToolsMayCallATool) {
  const auto lt = tok().piece_to_id("<"), brace = tok().piece_to_id("{");
  ASSERT_TRUE(lt && brace);
  const json tools = json::parse(R"([{"type": "function", "function": {"name": "get_weather", "strict": true,
      "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 5}},
                     "required": ["city"], "additionalProperties": false}}}])");
  const json format = json::parse(R"({"type": "json_schema", "json_schema": {"name": "answer", "schema":
      {"type": "object", "properties": {"forecast": {"type": "string", "maxLength": 4}}, "required": ["forecast"],
       "additionalProperties": false}}})");
  json body = {{"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}}, {"max_tokens", 200},
               {"temperature", 0}, {"tools", tools}, {"response_format", format},
               {"logit_bias", {{std::to_string(*lt), 100}}}, {"stop", {"</tool_call>"}}};
  const Reply call = post(server(), "/v1/chat/completions", body);
  ASSERT_EQ(call.status, 200) << call.raw;
  const json& m = call.body["choices"][0]["message"];
  ASSERT_TRUE(m.contains("tool_calls")) << call.raw;
  ASSERT_EQ(m["tool_calls"].size(), 1u) << call.raw;
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "get_weather");
  const json args = json::parse(m["tool_calls"][0]["function"]["arguments"].get<std::string>());
  EXPECT_LE(args["city"].get<std::string>().size(), 5u) << args;
  EXPECT_EQ(call.body["choices"][0]["finish_reason"], "tool_calls");

  body["logit_bias"] = {{std::to_string(*brace), 100}};
  body.erase("stop");
  const Reply answer = post(server(), "/v1/chat/completions", body);
  ASSERT_EQ(answer.status, 200) << answer.raw;
  const json& a = answer.body["choices"][0]["message"];
  EXPECT_TRUE(!a.contains("tool_calls") || a["tool_calls"].empty()) << answer.raw;
  const json content = json::parse(a["content"].get<std::string>());
  EXPECT_EQ(content.size(), 1u);
  EXPECT_LE(content["forecast"].get<std::string>().size(), 4u);
  EXPECT_EQ(answer.body["choices"][0]["finish_reason"], "stop");
}

// truncate_prompt_tokens (vLLM): the model sees the last k prompt tokens; -1 keeps the context
// length; the echo and usage say what was kept.
TEST_F(Http, TruncatePromptTokensKeepsTheEnd) {
  const std::vector<int32_t> ids = tok().encode(kPrompt, true);
  ASSERT_GT(ids.size(), 4u);
  const std::vector<int32_t> tail(ids.end() - 3, ids.end());
  const auto want = direct(tail, greedy(5));
  for (const json& prompt : {json(kPrompt), json(ids)}) {
    SCOPED_TRACE(prompt.dump());
    const Reply r = post(server(), "/v1/completions",
                         json{{"prompt", prompt}, {"max_tokens", 5}, {"temperature", 0}, {"truncate_prompt_tokens", 3},
                              {"echo", true}});
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["usage"]["prompt_tokens"], 3);
    EXPECT_EQ(r.body["choices"][0]["text"], tok().decode(tail, false) + want.text);
  }
  // Longer than the context: -1 and k < max_model_len keep the end, k > max_model_len is a 400.
  const int max_len = reference().max_model_len();
  std::vector<int32_t> long_ids;
  while (static_cast<int>(long_ids.size()) < max_len + 5) long_ids.insert(long_ids.end(), ids.begin(), ids.end());
  const std::vector<int32_t> kept(long_ids.end() - (max_len - 8), long_ids.end());
  const Reply r = post(server(), "/v1/completions",
                       json{{"prompt", long_ids}, {"max_tokens", 2}, {"temperature", 0},
                            {"truncate_prompt_tokens", max_len - 8}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], max_len - 8);
  EXPECT_EQ(r.body["choices"][0]["text"], direct(kept, greedy(2)).text);
  const Reply all = post(server(), "/v1/completions",
                         json{{"prompt", long_ids}, {"max_tokens", 2}, {"truncate_prompt_tokens", -1}});
  EXPECT_EQ(all.status, 400) << all.raw;  // the whole context kept: nothing left to generate
  const Reply over = post(server(), "/v1/completions",
                          json{{"prompt", "x"}, {"max_tokens", 2}, {"truncate_prompt_tokens", max_len + 1}});
  EXPECT_EQ(over.status, 400) << over.raw;
  EXPECT_EQ(over.body["error"]["param"], "truncate_prompt_tokens");
  // Chat: the rendered conversation's last tokens.
  const Reply chat = post(server(), "/v1/chat/completions",
                          json{{"messages", {{{"role", "user"}, {"content", kPrompt}}}}, {"max_tokens", 2},
                               {"truncate_prompt_tokens", 4}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  EXPECT_EQ(chat.body["usage"]["prompt_tokens"], 4);
}

// A text prompt longer than the context can be at the fewest tokens the tokenizer allows
// (bytes / Tokenizer::max_input_bytes_per_token) is refused before it is tokenized, naming
// that count; with truncate_prompt_tokens the same text is tokenized and its end kept.
TEST_F(Http, PromptsThatCannotFitAreRefusedBeforeTokenizing) {
  const int max_len = reference().max_model_len();
  const size_t bound = tok().max_input_bytes_per_token();
  ASSERT_GT(bound, 0u);  // byte-level BPE under NFC
  std::string text;
  while (text.size() <= bound * static_cast<size_t>(max_len)) text += kPrompt;
  const std::string fewest = std::to_string((text.size() + bound - 1) / bound);
  for (const auto& [route, body] : {std::pair<const char*, json>{"/v1/completions", json{{"prompt", text}, {"max_tokens", 2}}},
                                    {"/v1/chat/completions",
                                     json{{"messages", {{{"role", "user"}, {"content", text}}}}, {"max_tokens", 2}}}}) {
    const Reply r = post(server(), route, body);
    EXPECT_EQ(r.status, 400) << route << " " << r.raw.substr(0, 400);
    const std::string msg = r.body["error"]["message"];
    EXPECT_NE(msg.find("maximum context length is " + std::to_string(max_len)), std::string::npos) << msg;
    if (std::string(route) == "/v1/completions")  // chat counts the rendered template too
      EXPECT_NE(msg.find("at least " + fewest + " input tokens"), std::string::npos) << msg;
    else
      EXPECT_NE(msg.find("at least "), std::string::npos) << msg;
    EXPECT_EQ(r.body["error"]["param"], std::string(route) == "/v1/completions" ? "prompt" : "messages");
  }
  // Below the bound's reach: tokenized, then refused with the exact count.
  const std::vector<int32_t> ids = tok().encode(kPrompt, false);
  std::string shorter;
  while (static_cast<int>(shorter.size() / kPrompt.size() * ids.size()) < max_len + 8) shorter += kPrompt;
  ASSERT_LT(shorter.size(), bound * static_cast<size_t>(max_len - 1));
  const Reply exact = post(server(), "/v1/completions", json{{"prompt", shorter}, {"max_tokens", 2}});
  EXPECT_EQ(exact.status, 400) << exact.raw.substr(0, 400);
  EXPECT_NE(exact.body["error"]["message"].get<std::string>().find("your request has " +
                                                                    std::to_string(tok().encode(shorter, true).size())),
            std::string::npos)
      << exact.raw.substr(0, 400);
  const Reply kept = post(server(), "/v1/completions",
                          json{{"prompt", text}, {"max_tokens", 2}, {"truncate_prompt_tokens", 8}});
  ASSERT_EQ(kept.status, 200) << kept.raw.substr(0, 400);
  EXPECT_EQ(kept.body["usage"]["prompt_tokens"], 8);
}

// response_format json_object: the content is a JSON object or, cut by max_tokens, a prefix of
// one (nlohmann fails only at its end), the same as the engine's JSON mode gives; json_schema
// is refused by name.
TEST_F(Http, JsonModeGivesJsonObjects) {
  auto prefix_of_object = [](const std::string& s) {
    if (!s.empty() && s[0] != '{') return false;
    try {
      const json parsed = json::parse(s);
      return parsed.is_object();
    } catch (const json::parse_error& e) {
      return e.byte > s.size();
    }
  };
  for (int seed = 0; seed < 4; ++seed) {
    SCOPED_TRACE(seed);
    const json body = {{"messages", {{{"role", "user"}, {"content", "Answer in JSON: who was Moses?"}}}},
                       {"response_format", {{"type", "json_object"}}}, {"max_tokens", 48}, {"seed", seed},
                       {"logit_bias", {{std::to_string(*tok().piece_to_id("}")), 3}}}};
    const Reply r = post(server(), "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    const std::string content = r.body["choices"][0]["message"]["content"];
    EXPECT_TRUE(prefix_of_object(content)) << content;
    if (r.body["choices"][0]["finish_reason"] == "stop") {
      EXPECT_TRUE(json::parse(content).is_object()) << content;
    }
    // The engine's JSON mode on the same rendered prompt.
    SamplingParams p;
    p.output_format = {OutputPiece::object()};
    p.seed = static_cast<uint64_t>(seed);
    p.max_tokens = 48;
    p.logit_bias = {{*tok().piece_to_id("}"), 3.0f}};
    const json messages = json::array({{{"role", "user"}, {"content", "Answer in JSON: who was Moses?"}}});
    const std::string rendered =
        reference().chat_template()->render(nlohmann::ordered_json::parse(messages.dump()), nullptr, true);
    const auto want = direct(tok().encode(rendered, false), p);
    EXPECT_EQ(content, want.text);
  }
}

// response_format json_schema (and vLLM's guided_json / structured_outputs.json): every reply
// that stopped is valid under the schema (tests/engine/schema_oracle.h), each one the engine's
// own output for that schema; guided_choice gives one of the choices; what cannot be enforced
// is a 400 naming the field.
TEST_F(Http, JsonSchemaAndChoices) {
  const json schema = json::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"},
      "kind": {"enum": ["man", "woman", "child"]}}, "required": ["name", "age", "kind"]})");
  const testing::SchemaOracle oracle(schema);
  const json messages = {{{"role", "user"}, {"content", "Who was Moses? Answer in JSON."}}};
  const std::string brace = std::to_string(*tok().piece_to_id("}"));
  int stopped = 0;
  for (int seed = 0; seed < 4; ++seed) {
    SCOPED_TRACE(seed);
    json body = {{"messages", messages}, {"max_tokens", 96}, {"seed", seed}, {"logit_bias", {{brace, 3}}},
                 {"temperature", 1.0}, {"top_p", 1.0}, {"top_k", -1}};
    if (seed % 2 == 0) {
      body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "person"}, {"schema", schema}}}};
    } else {
      body[seed == 1 ? "guided_json" : "structured_outputs"] =
          seed == 1 ? json(schema.dump()) : json{{"json", schema}, {"disable_any_whitespace", true}};
    }
    const Reply r = post(server(), "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    const std::string content = r.body["choices"][0]["message"]["content"];
    if (r.body["choices"][0]["finish_reason"] == "stop") {
      ++stopped;
      const json parsed = json::parse(content, nullptr, false);
      ASSERT_FALSE(parsed.is_discarded()) << content;
      EXPECT_TRUE(oracle.valid(parsed)) << content;
    }
    SamplingParams p;
    p.output_format = {OutputPiece::value(JsonSchema::compile(schema, /*any_whitespace=*/seed != 3))};
    p.seed = static_cast<uint64_t>(seed);
    p.max_tokens = 96;
    p.logit_bias = {{*tok().piece_to_id("}"), 3.0f}};
    const std::string rendered =
        reference().chat_template()->render(nlohmann::ordered_json::parse(messages.dump()), nullptr, true);
    EXPECT_EQ(content, direct(tok().encode(rendered, false), p).text);
  }
  EXPECT_GT(stopped, 0) << "no reply closed its object within max_tokens";

  const json choices = {"yes", "no", "not sure"};
  for (const char* field : {"guided_choice", "structured_outputs"}) {
    for (int seed = 0; seed < 3; ++seed) {
      json body = {{"prompt", "Is the sky blue?"}, {"max_tokens", 8}, {"seed", seed}};
      body[field] = std::string(field) == "guided_choice" ? choices : json{{"choice", choices}};
      const Reply r = post(server(), "/v1/completions", body);
      ASSERT_EQ(r.status, 200) << r.raw;
      const std::string text = r.body["choices"][0]["text"];
      EXPECT_NE(std::find(choices.begin(), choices.end(), text), choices.end()) << text;
      EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
    }
  }
  // A choice ends once spelled out, min_tokens or not (min_tokens banned the only ids left: a
  // draw of nothing, and the server's next request crashed it).
  for (int seed = 0; seed < 2; ++seed) {
    const Reply r = post(server(), "/v1/completions",
                         {{"prompt", "Is the sky blue?"}, {"max_tokens", 10}, {"min_tokens", 5}, {"seed", seed},
                          {"guided_choice", choices}});
    ASSERT_EQ(r.status, 200) << r.raw;
    const std::string text = r.body["choices"][0]["text"];
    EXPECT_NE(std::find(choices.begin(), choices.end(), text), choices.end()) << text;
    EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
  }

  const auto error = [&](const json& extra) {
    json body = {{"messages", messages}};
    body.update(extra);
    return post(server(), "/v1/chat/completions", body);
  };
  const Reply pattern = error({{"response_format", {{"type", "json_schema"}, {"json_schema",
                                 {{"name", "p"}, {"schema", {{"type", "string"}, {"pattern", "a+"}, {"maxLength", 3}}}}}}}});
  EXPECT_EQ(pattern.status, 400);
  EXPECT_EQ(pattern.body["error"]["param"], "response_format");
  EXPECT_NE(pattern.body["error"]["message"].get<std::string>().find("'pattern' together with"), std::string::npos)
      << pattern.raw;
  EXPECT_EQ(error({{"response_format", {{"type", "json_schema"}}}}).status, 400);
  EXPECT_EQ(error({{"guided_grammar", "root ::= x"}}).status, 400);
  EXPECT_EQ(error({{"guided_json", "{not json"}}).status, 400);
  EXPECT_EQ(error({{"guided_choice", json::array()}}).status, 400);
  EXPECT_EQ(error({{"structured_outputs", {{"grammar", "root ::= x"}}}}).status, 400);
  const Reply both = error({{"guided_choice", choices}, {"response_format", {{"type", "json_object"}}}});
  EXPECT_EQ(both.status, 400);
  EXPECT_NE(both.body["error"]["message"].get<std::string>().find("both"), std::string::npos) << both.raw;
  const json tool = {{"type", "function"}, {"function", {{"name", "f"}}}};
  EXPECT_EQ(error({{"guided_json", schema}, {"tools", {tool}}, {"tool_choice", "required"}}).status, 400);
  // No schema: any JSON value.
  const Reply any = error({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}}},
                           {"max_tokens", 4}});
  EXPECT_EQ(any.status, 200) << any.raw;
}

// vLLM's guided_regex and structured_outputs.regex: every reply that stopped matches the
// pattern whole (std::regex as the reference), each the engine's own output for that regex;
// a pattern that cannot be compiled is a 400 naming the field and the offset.
TEST_F(Http, GuidedRegex) {
  const std::string pattern = "(The|A) [a-z]+( [a-z]+){1,5}\\. (Yes|No)!";
  const std::regex ref(pattern, std::regex::ECMAScript);
  int stopped = 0;
  for (int seed = 0; seed < 4; ++seed) {
    SCOPED_TRACE(seed);
    json body = {{"prompt", "And the LORD said unto Moses,"}, {"max_tokens", 40}, {"seed", seed}, {"temperature", 1.0},
                 {"top_p", 1.0}, {"top_k", -1}};
    if (seed % 2 == 0) body["guided_regex"] = pattern;
    else body["structured_outputs"] = {{"regex", pattern}};
    const Reply r = post(server(), "/v1/completions", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    const std::string text = r.body["choices"][0]["text"];
    if (r.body["choices"][0]["finish_reason"] == "stop") {
      ++stopped;
      EXPECT_TRUE(std::regex_match(text, ref)) << text;
    }
    SamplingParams p;
    p.output_format = {OutputPiece::matching(Regex::compile(pattern))};
    p.seed = static_cast<uint64_t>(seed);
    p.max_tokens = 40;
    EXPECT_EQ(text, direct(tok().encode("And the LORD said unto Moses,", true), p).text);
  }
  EXPECT_GT(stopped, 0);
  const auto error = [&](const json& extra) {
    json body = {{"prompt", "Hi"}, {"max_tokens", 4}};
    body.update(extra);
    return post(server(), "/v1/completions", body);
  };
  const Reply open = error({{"guided_regex", "(ab"}});
  EXPECT_EQ(open.status, 400);
  EXPECT_EQ(open.body["error"]["param"], "guided_regex");
  EXPECT_NE(open.body["error"]["message"].get<std::string>().find("missing ')' at offset 3"), std::string::npos)
      << open.raw;
  const Reply look = error({{"structured_outputs", {{"regex", "a(?=b)"}}}});
  EXPECT_EQ(look.status, 400);
  EXPECT_NE(look.body["error"]["message"].get<std::string>().find("lookaround"), std::string::npos) << look.raw;
  EXPECT_EQ(error({{"guided_regex", 5}}).status, 400);
  EXPECT_EQ(error({{"guided_regex", "a"}, {"guided_choice", {"a"}}}).status, 400);
}

// vLLM's guided_grammar and structured_outputs.grammar (GBNF): every reply that stopped is a
// sentence of the grammar, each the engine's own output under it; a grammar that cannot be
// compiled is a 400 naming the field, the line and the column.
TEST_F(Http, GuidedGrammar) {
  const std::string grammar = R"g(
      root    ::= subject " " verb " " object "."
      subject ::= ("The" | "A") " " word
      verb    ::= "said" | "saw" | "went unto"
      object  ::= word (" " word){0,4}
      word    ::= [a-z]+
  )g";
  const auto g = Grammar::compile(grammar);
  int stopped = 0;
  for (int seed = 0; seed < 4; ++seed) {
    SCOPED_TRACE(seed);
    json body = {{"prompt", kPrompt}, {"max_tokens", 40}, {"seed", seed}, {"temperature", 1.0}, {"top_p", 1.0},
                 {"top_k", -1}};
    if (seed % 2 == 0) body["guided_grammar"] = grammar;
    else body["structured_outputs"] = {{"grammar", grammar}};
    const Reply r = post(server(), "/v1/completions", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    const std::string text = r.body["choices"][0]["text"];
    if (r.body["choices"][0]["finish_reason"] == "stop") {
      ++stopped;
      EXPECT_TRUE(g->full_match(text)) << text;
    }
    SamplingParams p;
    p.output_format = {OutputPiece::sentence(g)};
    p.seed = static_cast<uint64_t>(seed);
    p.top_p = 1.0f;
    p.max_tokens = 40;
    EXPECT_EQ(text, direct(tok().encode(kPrompt, true), p).text);
  }
  EXPECT_GT(stopped, 0);
  const auto error = [&](const json& extra) {
    json body = {{"prompt", "Hi"}, {"max_tokens", 4}};
    body.update(extra);
    return post(server(), "/v1/completions", body);
  };
  const Reply left = error({{"guided_grammar", "root ::= list\nlist ::= list \",\" \"a\" | \"a\""}});
  EXPECT_EQ(left.status, 400);
  EXPECT_EQ(left.body["error"]["param"], "guided_grammar");
  EXPECT_NE(left.body["error"]["message"].get<std::string>().find("line 2, column 1: rule 'list' is left-recursive"),
            std::string::npos)
      << left.raw;
  const Reply undefined = error({{"structured_outputs", {{"grammar", "root ::= x"}}}});
  EXPECT_EQ(undefined.status, 400);
  EXPECT_EQ(undefined.body["error"]["param"], "structured_outputs");
  EXPECT_EQ(error({{"guided_grammar", 5}}).status, 400);
  EXPECT_EQ(error({{"guided_grammar", "root ::= \"a\""}, {"guided_regex", "a"}}).status, 400);
}

TEST_F(Http, CompletionPromptShapes) {
  const std::vector<int32_t> a = tok().encode("A computer", true), b = tok().encode("The wise man", true);
  const auto want_a = direct(a, greedy(6)), want_b = direct(b, greedy(6));
  for (const json& prompt : {json(a), json::array({a, b}), json::array({"A computer", "The wise man"})}) {
    SCOPED_TRACE(prompt.dump());
    const Reply r = post(server(), "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 6}, {"temperature", 0}});
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["choices"][0]["text"], want_a.text);
    if (r.body["choices"].size() == 2) {
      EXPECT_EQ(r.body["choices"][1]["index"], 1);
      EXPECT_EQ(r.body["choices"][1]["text"], want_b.text);
      EXPECT_EQ(r.body["usage"]["prompt_tokens"], a.size() + b.size());
    }
  }
}

TEST_F(Http, ChatMatchesTemplateAndEngine) {
  const json messages = json::array({{{"role", "user"}, {"content", "Tell me a fortune."}}});
  const std::string rendered = reference().chat_template()->render(nlohmann::ordered_json::parse(messages.dump()),
                                                                    nullptr, true);
  const std::vector<int32_t> ids = tok().encode(rendered, false);
  const auto want = direct(ids, greedy(20));
  const Reply r = post(server(), "/v1/chat/completions",
                       json{{"model", "tiny"}, {"messages", messages}, {"max_tokens", 20}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "chat.completion");
  EXPECT_EQ(r.body["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_EQ(c["message"]["content"], want.text);
  EXPECT_EQ(c["finish_reason"], finish_reason_name(want.finish_reason));
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], ids.size());
  EXPECT_EQ(r.body["usage"]["completion_tokens"], want.token_ids.size());

  // add_generation_prompt=false renders without the assistant header.
  const std::string bare = reference().chat_template()->render(nlohmann::ordered_json::parse(messages.dump()),
                                                                nullptr, false);
  const Reply t = post(server(), "/tokenize", json{{"messages", messages}, {"add_generation_prompt", false}});
  ASSERT_EQ(t.status, 200) << t.raw;
  EXPECT_EQ(t.body["tokens"], json(tok().encode(bare, false)));
}

TEST_F(Http, ChatContinueFinalMessage) {
  const json messages = json::array({{{"role", "user"}, {"content", "Begin."}},
                                     {{"role", "assistant"}, {"content", "In the beginning"}}});
  const std::string full = reference().chat_template()->render(nlohmann::ordered_json::parse(messages.dump()),
                                                                nullptr, false);
  const std::string cut = full.substr(0, full.rfind("In the beginning") + std::string("In the beginning").size());
  const auto want = direct(tok().encode(cut, false), greedy(8));
  const Reply r = post(server(), "/v1/chat/completions",
                       json{{"messages", messages}, {"max_tokens", 8}, {"temperature", 0},
                            {"continue_final_message", true}, {"add_generation_prompt", false}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["message"]["content"], want.text);
}

TEST_F(Http, StreamingEqualsNonStreaming) {
  const json body = {{"prompt", kPrompt}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}};
  const Reply full = post(server(), "/v1/completions", body);
  json sbody = body;
  sbody["stream"] = true;
  sbody["stream_options"] = {{"include_usage", true}};
  const Stream s = stream(server(), "/v1/completions", sbody);
  ASSERT_EQ(s.status, 200);
  ASSERT_TRUE(s.done);
  ASSERT_GE(s.chunks.size(), 2u);
  std::string text;
  const std::string id = s.chunks[0]["id"];
  for (size_t i = 0; i + 1 < s.chunks.size(); ++i) {
    const json& ch = s.chunks[i];
    EXPECT_EQ(ch["id"], id);
    EXPECT_EQ(ch["object"], "text_completion");
    text += ch["choices"][0]["text"].get<std::string>();
    const bool last = i + 2 == s.chunks.size();
    EXPECT_EQ(ch["choices"][0]["finish_reason"].is_null(), !last) << ch.dump();
  }
  EXPECT_EQ(text, full.body["choices"][0]["text"]);
  EXPECT_EQ(s.chunks[s.chunks.size() - 2]["choices"][0]["finish_reason"], "length");
  const json& usage = s.chunks.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["id"], id);
  EXPECT_EQ(usage["usage"]["completion_tokens"], 24);
  EXPECT_EQ(counts(usage["usage"]), counts(full.body["usage"]));

  // Without include_usage there is no usage chunk.
  sbody.erase("stream_options");
  const Stream s2 = stream(server(), "/v1/completions", sbody);
  for (const auto& ch : s2.chunks) EXPECT_FALSE(ch.contains("usage"));

  // vLLM's continuous_usage_stats: every chunk carries the usage so far, the tokens it has
  // streamed counted, ending at the final usage. For chat the role chunk counts 0 tokens.
  for (const char* route : {"/v1/completions", "/v1/chat/completions"}) {
    SCOPED_TRACE(route);
    json cbody = std::string(route) == "/v1/completions"
                     ? sbody
                     : json{{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}, {"max_tokens", 12},
                            {"temperature", 0}, {"ignore_eos", true}, {"stream", true}};
    cbody["stream_options"] = {{"include_usage", true}, {"continuous_usage_stats", true}};
    const Stream c = stream(server(), route, cbody);
    ASSERT_TRUE(c.done);
    ASSERT_GE(c.chunks.size(), 3u);
    const json& final_usage = c.chunks.back()["usage"];
    int last = -1;
    for (size_t i = 0; i + 1 < c.chunks.size(); ++i) {
      const json& ch = c.chunks[i];
      ASSERT_TRUE(ch.contains("usage")) << ch.dump();
      EXPECT_EQ(ch["usage"]["prompt_tokens"], final_usage["prompt_tokens"]);
      const int done = ch["usage"]["completion_tokens"];
      EXPECT_GE(done, last);
      EXPECT_EQ(ch["usage"]["total_tokens"].get<int>(), final_usage["prompt_tokens"].get<int>() + done);
      last = done;
    }
    EXPECT_EQ(last, final_usage["completion_tokens"].get<int>());
    // Without include_usage it asks for nothing (as in vLLM).
    cbody["stream_options"] = {{"continuous_usage_stats", true}};
    const Stream off = stream(server(), route, cbody);
    for (const auto& ch : off.chunks) EXPECT_FALSE(ch.contains("usage"));
  }
}

// vLLM's return_token_ids: the prompt's ids and each choice's generated ids beside the text,
// against the tokenizer and the engine driven directly; streamed, the chunks' ids add up to
// the whole response's and the prompt's come once (completions: in each choice's first chunk;
// chat: at the top of the role chunks). A stop string holds text back, so some chunks wait.
TEST_F(Http, ReturnTokenIds) {
  const std::string other = "Blessed are the meek:";
  const std::vector<int32_t> text_ids = tok().encode(kPrompt, true), given = tok().encode(other, true);
  const auto want_text = direct(text_ids, greedy(12));
  const auto want_given = direct(given, greedy(12));
  json body = {{"prompt", json::array({kPrompt, other})}, {"max_tokens", 12}, {"temperature", 0}, {"n", 2},
               {"return_token_ids", true}};
  const Reply full = post(server(), "/v1/completions", body);
  ASSERT_EQ(full.status, 200) << full.raw;
  ASSERT_EQ(full.body["choices"].size(), 4u);
  for (const json& c : full.body["choices"]) {
    const bool first = c["index"].get<int>() < 2;
    EXPECT_EQ(c["prompt_token_ids"], json(first ? text_ids : given)) << c.dump();
    EXPECT_EQ(c["token_ids"], json((first ? want_text : want_given).token_ids)) << c.dump();
    EXPECT_EQ(c["text"], (first ? want_text : want_given).text);
  }
  body["stream"] = true;
  // Held-back text (up to the longest stop string's length - 1 characters): the chunks that
  // wait carry their ids later.
  body["stop"] = json::array({"the", std::string(40, 'z')});
  const Reply stopped = post(server(), "/v1/completions", json{{"prompt", json::array({kPrompt, other})},
                                                               {"max_tokens", 12}, {"temperature", 0}, {"n", 2},
                                                               {"stop", body["stop"]}, {"return_token_ids", true}});
  ASSERT_EQ(stopped.status, 200) << stopped.raw;
  const Stream s = stream(server(), "/v1/completions", body);
  ASSERT_EQ(s.status, 200);
  ASSERT_TRUE(s.done);
  std::map<int, json> ids, prompt_ids;
  std::map<int, std::string> text;
  size_t most = 0;  // the most ids one chunk carried
  for (const json& ch : s.chunks) {
    for (const json& c : ch["choices"]) {
      const int i = c["index"];
      ASSERT_TRUE(c.contains("token_ids")) << c.dump();
      for (const json& t : c["token_ids"]) ids[i].push_back(t);
      most = std::max(most, c["token_ids"].size());
      text[i] += c["text"].get<std::string>();
      if (c.contains("prompt_token_ids")) {
        EXPECT_FALSE(prompt_ids.count(i)) << "prompt_token_ids twice for choice " << i;
        EXPECT_TRUE(ids[i].size() == c["token_ids"].size()) << "prompt_token_ids after the choice's first chunk";
        prompt_ids[i] = c["prompt_token_ids"];
      }
    }
  }
  EXPECT_GT(most, 1u) << "no chunk waited for held-back text";
  for (const json& c : stopped.body["choices"]) {
    const int i = c["index"];
    SCOPED_TRACE(i);
    EXPECT_EQ(ids[i], c["token_ids"]);
    EXPECT_EQ(prompt_ids[i], c["prompt_token_ids"]);
    EXPECT_EQ(text[i], c["text"]);
  }

  // A prompt of token ids comes back as given.
  const std::vector<int32_t> ids_prompt = {5, 17, 301, 42};
  const Reply by_ids = post(server(), "/v1/completions", json{{"prompt", ids_prompt}, {"max_tokens", 6}, {"temperature", 0},
                                                              {"return_token_ids", true}});
  ASSERT_EQ(by_ids.status, 200) << by_ids.raw;
  EXPECT_EQ(by_ids.body["choices"][0]["prompt_token_ids"], json(ids_prompt));
  EXPECT_EQ(by_ids.body["choices"][0]["token_ids"], json(direct(ids_prompt, greedy(6)).token_ids));

  // Chat: prompt_token_ids at the top (what /tokenize gives for the messages), token_ids per choice.
  const json messages = json::array({{{"role", "user"}, {"content", "Tell me a fortune."}}});
  const Reply t = post(server(), "/tokenize", json{{"messages", messages}});
  ASSERT_EQ(t.status, 200) << t.raw;
  const std::vector<int32_t> chat_ids = t.body["tokens"];
  const auto want_chat = direct(chat_ids, greedy(14));
  json cbody = {{"messages", messages}, {"max_tokens", 14}, {"temperature", 0}, {"n", 2}, {"return_token_ids", true}};
  const Reply chat = post(server(), "/v1/chat/completions", cbody);
  ASSERT_EQ(chat.status, 200) << chat.raw;
  EXPECT_EQ(chat.body["prompt_token_ids"], json(chat_ids));
  for (const json& c : chat.body["choices"]) {
    EXPECT_EQ(c["token_ids"], json(want_chat.token_ids)) << c.dump();
    EXPECT_FALSE(c.contains("prompt_token_ids"));
  }
  cbody["stream"] = true;
  const Stream cs = stream(server(), "/v1/chat/completions", cbody);
  ASSERT_TRUE(cs.done);
  std::map<int, json> cids;
  int with_prompt = 0;
  for (const json& ch : cs.chunks) {
    if (ch.contains("prompt_token_ids")) {
      ++with_prompt;
      EXPECT_EQ(ch["prompt_token_ids"], json(chat_ids));
      EXPECT_EQ(ch["choices"][0]["delta"]["role"], "assistant") << "prompt_token_ids only on the role chunks";
    }
    for (const json& c : ch["choices"])
      if (c.contains("token_ids"))
        for (const json& id : c["token_ids"]) cids[c["index"].get<int>()].push_back(id);
  }
  EXPECT_EQ(with_prompt, 2);
  EXPECT_EQ(cids[0], json(want_chat.token_ids));
  EXPECT_EQ(cids[1], json(want_chat.token_ids));

  // Off by default; a non-boolean is a 400 naming the field.
  const Reply plain = post(server(), "/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 2}});
  EXPECT_FALSE(plain.body.contains("prompt_token_ids"));
  EXPECT_FALSE(plain.body["choices"][0].contains("token_ids"));
  const Reply bad = post(server(), "/v1/completions", json{{"prompt", kPrompt}, {"return_token_ids", "yes"}});
  EXPECT_EQ(bad.status, 400) << bad.raw;
  EXPECT_EQ(bad.body["error"]["param"], "return_token_ids") << bad.raw;
}

// With tools in the request, output without <tool_call> blocks is plain content, streamed or
// not: biased towards '<' so that the stream's hold-back of what may start a tag is exercised
// (server/tool_calls.h has the parser's own tests; no model here writes tool calls).
TEST_F(Http, ToolsWithoutCallsKeepTheContent) {
  const json tools = json::array({{{"type", "function"},
                                   {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}});
  const int32_t lt = *tok().piece_to_id("<");
  int with_lt = 0;
  for (int seed = 0; seed < 4; ++seed) {
    SCOPED_TRACE(seed);
    json body = {{"messages", {{{"role", "user"}, {"content", "What is the weather in Paris?"}}}},
                 {"tools", tools}, {"max_tokens", 40}, {"seed", seed}, {"logit_bias", {{std::to_string(lt), 5}}}};
    const Reply full = post(server(), "/v1/chat/completions", body);
    ASSERT_EQ(full.status, 200) << full.raw;
    const json& message = full.body["choices"][0]["message"];
    EXPECT_FALSE(message.contains("tool_calls"));
    const std::string content = message["content"];
    with_lt += content.find('<') != std::string::npos;
    body["stream"] = true;
    const Stream st = stream(server(), "/v1/chat/completions", body);
    ASSERT_EQ(st.status, 200);
    std::string text;
    for (const json& ch : st.chunks) {
      const json& delta = ch["choices"][0]["delta"];
      EXPECT_FALSE(delta.contains("tool_calls"));
      if (delta.contains("content")) text += delta["content"].get<std::string>();
    }
    EXPECT_EQ(text, content);
    EXPECT_EQ(st.chunks.back()["choices"][0]["finish_reason"], full.body["choices"][0]["finish_reason"]);
  }
  EXPECT_GT(with_lt, 0) << "no reply held a '<'";
}

// tool_choice "required" or a named function forces a call: the output is constrained to
// <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, which comes back as tool_calls
// (finish_reason "tool_calls" once the call is closed), streamed or not.
TEST_F(Http, ForcedToolCalls) {
  const json weather = json::parse(R"({"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]},
      "days": {"type": "integer"}}, "required": ["city"]})");
  const testing::SchemaOracle weather_args(weather);
  const json tools = json::array(
      {{{"type", "function"}, {"function", {{"name", "get_weather"}, {"parameters", weather}}}},
       {{"type", "function"}, {"function", {{"name", "now"}, {"parameters", {{"type", "object"}}}}}}});
  const std::string brace = std::to_string(*tok().piece_to_id("}"));
  int closed = 0;
  for (const json& choice : {json("required"), json{{"type", "function"}, {"function", {{"name", "get_weather"}}}}}) {
    for (int seed = 0; seed < 3; ++seed) {
      SCOPED_TRACE(choice.dump() + " seed " + std::to_string(seed));
      json body = {{"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}}, {"tools", tools},
                   {"tool_choice", choice}, {"max_tokens", 120}, {"seed", seed}, {"logit_bias", {{brace, 4}}}};
      const Reply r = post(server(), "/v1/chat/completions", body);
      ASSERT_EQ(r.status, 200) << r.raw;
      const json& c = r.body["choices"][0];
      if (c["finish_reason"] != "tool_calls") continue;  // cut by max_tokens inside the arguments
      ++closed;
      const json& calls = c["message"]["tool_calls"];
      ASSERT_EQ(calls.size(), 1u) << r.raw;
      EXPECT_TRUE(c["message"]["content"].is_null());
      EXPECT_EQ(calls[0]["type"], "function");
      const json args = json::parse(calls[0]["function"]["arguments"].get<std::string>());
      if (choice.is_object()) {
        EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
      }
      EXPECT_TRUE(args.is_object());
      if (calls[0]["function"]["name"] == "get_weather") {
        EXPECT_TRUE(weather_args.valid(args)) << args.dump();
      }
      // The stream carries the same call as it is written: a first delta with the id, type and
      // name, then the arguments in fragments over several chunks (the model's text, so the
      // same JSON as the whole reply's, which is re-serialised), then finish_reason "tool_calls".
      body["stream"] = true;
      const Stream st = stream(server(), "/v1/chat/completions", body);
      ASSERT_EQ(st.status, 200);
      std::string name, arguments;
      int call_chunks = 0, named = 0;
      for (const json& ch : st.chunks) {
        const json& delta = ch["choices"][0]["delta"];
        if (!delta.contains("tool_calls")) continue;
        ++call_chunks;
        for (const json& d : delta["tool_calls"]) {
          EXPECT_EQ(d["index"], 0);
          if (d["function"].contains("name")) {
            ++named;
            name = d["function"]["name"];
            EXPECT_EQ(d["type"], "function");
            EXPECT_EQ(d["id"].get<std::string>().rfind("chatcmpl-tool-", 0), 0u);
          } else {
            EXPECT_FALSE(d.contains("id"));
          }
          arguments += d["function"]["arguments"].get<std::string>();
        }
      }
      EXPECT_EQ(named, 1);
      EXPECT_GT(call_chunks, 2);
      EXPECT_EQ(name, calls[0]["function"]["name"]);
      EXPECT_EQ(json::parse(arguments), args) << arguments;
      EXPECT_EQ(st.chunks.back()["choices"][0]["finish_reason"], "tool_calls");
    }
  }
  EXPECT_GT(closed, 0) << "no forced call was closed within max_tokens";
  // A forced call needs tools, and a named one a tool of that name.
  const json msgs = {{{"role", "user"}, {"content", "x"}}};
  EXPECT_EQ(post(server(), "/v1/chat/completions", json{{"messages", msgs}, {"tool_choice", "required"}}).status, 400);
  const Reply unknown = post(server(), "/v1/chat/completions",
                             json{{"messages", msgs}, {"tools", tools},
                                  {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.body["error"]["param"], "tool_choice");
}

// Strict tools under tool_choice "auto": the reply is free text until the model writes
// "<tool_call>" (then the call follows the tool's schema; JsonMode.FreeTextThenTheFormatAfterItsTrigger
// and FormatPrefix.FreeTextUntilATrigger test that part, which the demo model never reaches):
// the same text as without "strict"; "strict" must be a boolean.
TEST_F(Http, StrictToolsLeaveFreeTextAlone) {
  json tool = {{"type", "function"},
               {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}};
  for (int seed = 0; seed < 3; ++seed) {
    json body = {{"messages", {{{"role", "user"}, {"content", "Tell me about Moses."}}}}, {"tools", {tool}},
                 {"max_tokens", 24}, {"seed", seed}};
    const Reply plain = post(server(), "/v1/chat/completions", body);
    body["tools"][0]["function"]["strict"] = true;
    const Reply strict = post(server(), "/v1/chat/completions", body);
    ASSERT_EQ(plain.status, 200) << plain.raw;
    ASSERT_EQ(strict.status, 200) << strict.raw;
    EXPECT_EQ(strict.body["choices"][0]["message"], plain.body["choices"][0]["message"]) << seed;
    EXPECT_EQ(strict.body["choices"][0]["finish_reason"], plain.body["choices"][0]["finish_reason"]) << seed;
  }
  tool["function"]["strict"] = "yes";
  const Reply bad = post(server(), "/v1/chat/completions",
                         json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"tools", {tool}}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["param"], "tools");
}

TEST_F(Http, ChatStreamingRoleFirstFinishLast) {
  const json messages = json::array({{{"role", "user"}, {"content", "Say something wise."}}});
  const json body = {{"messages", messages}, {"max_tokens", 16}, {"temperature", 0}};
  const Reply full = post(server(), "/v1/chat/completions", body);
  json sbody = body;
  sbody["stream"] = true;
  sbody["stream_options"] = {{"include_usage", true}};
  const Stream s = stream(server(), "/v1/chat/completions", sbody);
  ASSERT_TRUE(s.done);
  ASSERT_GE(s.chunks.size(), 3u);
  EXPECT_EQ(s.chunks[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(s.chunks[0]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (size_t i = 0; i + 1 < s.chunks.size(); ++i) {
    EXPECT_EQ(s.chunks[i]["id"], s.chunks[0]["id"]);
    const json& d = s.chunks[i]["choices"][0]["delta"];
    if (i > 0) {
      EXPECT_FALSE(d.contains("role"));
    }
    if (d.contains("content")) text += d["content"].get<std::string>();
  }
  EXPECT_EQ(text, full.body["choices"][0]["message"]["content"]);
  EXPECT_EQ(s.chunks[s.chunks.size() - 2]["choices"][0]["finish_reason"],
            full.body["choices"][0]["finish_reason"]);
  EXPECT_EQ(counts(s.chunks.back()["usage"]), counts(full.body["usage"]));
}

TEST_F(Http, ChatLogprobsMatchTheEngine) {
  const json messages = json::array({{{"role", "user"}, {"content", "Name a virtue."}}});
  const std::string rendered = reference().chat_template()->render(nlohmann::ordered_json::parse(messages.dump()),
                                                                    nullptr, true);
  const auto want = direct(tok().encode(rendered, false), greedy(10, 3));
  const Reply r = post(server(), "/v1/chat/completions",
                       json{{"messages", messages}, {"max_tokens", 10}, {"temperature", 0}, {"logprobs", true},
                            {"top_logprobs", 3}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& content = r.body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), want.logprobs.size());
  for (size_t i = 0; i < content.size(); ++i) {
    const auto& w = want.logprobs[i];
    EXPECT_NEAR(content[i]["logprob"].get<double>(), w.logprob, 1e-4);
    ASSERT_EQ(content[i]["top_logprobs"].size(), 3u);
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(content[i]["top_logprobs"][k]["logprob"].get<double>(), w.top[k].second, 1e-4);
    // "bytes" are the token's bytes; "token" is their text.
    std::string bytes;
    for (const auto& b : content[i]["bytes"]) bytes.push_back(static_cast<char>(b.get<int>()));
    const int32_t id = want.token_ids[i];
    EXPECT_EQ(content[i]["token"], tok().decode(std::vector<int32_t>{id}, false));
    if (bytes.find('\xef') == std::string::npos) {
      EXPECT_EQ(bytes, tok().decode(std::vector<int32_t>{id}, false));
    }
  }

  // return_tokens_as_token_ids spells tokens "token_id:<id>".
  const Reply ids = post(server(), "/v1/chat/completions",
                         json{{"messages", messages}, {"max_tokens", 3}, {"temperature", 0}, {"logprobs", true},
                              {"return_tokens_as_token_ids", true}});
  const json& c2 = ids.body["choices"][0]["logprobs"]["content"];
  for (size_t i = 0; i < c2.size(); ++i)
    EXPECT_EQ(c2[i]["token"], "token_id:" + std::to_string(want.token_ids[i]));
}

TEST_F(Http, CompletionLogprobsLegacyShapeWithEcho) {
  const std::vector<int32_t> prompt = tok().encode(kPrompt, true);
  const auto want = direct(prompt, greedy(5, 2));
  const Reply r = post(server(), "/v1/completions",
                       json{{"prompt", prompt}, {"max_tokens", 5}, {"temperature", 0}, {"logprobs", 2}, {"echo", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& c = r.body["choices"][0];
  EXPECT_EQ(c["text"], tok().decode(prompt, false) + want.text);
  const json& lp = c["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), prompt.size() + 5);
  ASSERT_EQ(lp["token_logprobs"].size(), prompt.size() + 5);
  ASSERT_EQ(lp["top_logprobs"].size(), prompt.size() + 5);
  ASSERT_EQ(lp["text_offset"].size(), prompt.size() + 5);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  for (size_t i = 1; i < prompt.size(); ++i) EXPECT_TRUE(lp["token_logprobs"][i].is_number()) << i;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(lp["token_logprobs"][prompt.size() + i].get<double>(), want.logprobs[i].logprob, 1e-4);
    EXPECT_GE(lp["top_logprobs"][prompt.size() + i].size(), 2u);
  }
  for (size_t i = 1; i < lp["text_offset"].size(); ++i)
    EXPECT_GE(lp["text_offset"][i].get<int>(), lp["text_offset"][i - 1].get<int>());
}

// vLLM's prompt_logprobs: the logprob of prompt token i given tokens < i, from the prefill.
// Reference: the engine's own decode steps. Tokens it generated greedily, appended to the
// prompt, must get in the prefill the logprobs, rank 1 and top alternatives they had when
// drawn.
TEST_F(Http, PromptLogprobsMatchTheDecodeSteps) {
  const std::vector<int32_t> prompt = tok().encode(kPrompt, true);
  const auto want = direct(prompt, greedy(5, 3));
  std::vector<int32_t> full = prompt;
  full.insert(full.end(), want.token_ids.begin(), want.token_ids.begin() + 4);
  const Reply r = post(server(), "/v1/completions",
                       json{{"prompt", full}, {"max_tokens", 1}, {"temperature", 0}, {"prompt_logprobs", 3},
                            {"logprobs", 1}, {"echo", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& pl = r.body["choices"][0]["prompt_logprobs"];
  ASSERT_EQ(pl.size(), full.size());
  EXPECT_TRUE(pl[0].is_null());
  for (size_t i = 1; i < full.size(); ++i) {
    SCOPED_TRACE(i);
    const json& e = pl[i];
    const std::string key = std::to_string(full[i]);
    ASSERT_TRUE(e.contains(key)) << e.dump();
    const int rank = e[key]["rank"].get<int>();
    EXPECT_GE(rank, 1);
    EXPECT_EQ(e[key]["decoded_token"], tok().decode(std::vector<int32_t>{full[i]}, false));
    // The three most likely (ranks 1..3, most likely first) plus the prompt token when it is not one of them.
    EXPECT_EQ(e.size(), rank <= 3 ? 3u : 4u) << e.dump();
    std::vector<std::pair<int, double>> by_rank;
    for (auto it = e.begin(); it != e.end(); ++it)
      if (it.key() != key || rank <= 3) by_rank.emplace_back(it.value()["rank"].get<int>(), it.value()["logprob"].get<double>());
    std::sort(by_rank.begin(), by_rank.end());
    ASSERT_EQ(by_rank.size(), 3u);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(by_rank[k].first, k + 1);
    EXPECT_GE(by_rank[0].second, by_rank[1].second);
    EXPECT_GE(by_rank[1].second, by_rank[2].second);
    if (rank > 3) {
      EXPECT_LE(e[key]["logprob"].get<double>(), by_rank[2].second);
    }
  }
  for (size_t j = 0; j < 4; ++j) {
    SCOPED_TRACE(j);
    const json& e = pl[prompt.size() + j];
    const auto& w = want.logprobs[j];
    const json& mine = e[std::to_string(w.token)];
    EXPECT_NEAR(mine["logprob"].get<double>(), w.logprob, 2e-4);
    EXPECT_EQ(mine["rank"], 1);
    for (size_t k = 0; k < 3; ++k) {
      const std::string id = std::to_string(w.top[k].first);
      ASSERT_TRUE(e.contains(id)) << e.dump();
      EXPECT_NEAR(e[id]["logprob"].get<double>(), w.top[k].second, 2e-4);
      EXPECT_EQ(e[id]["rank"], static_cast<int>(k + 1));
    }
  }
  // The echo in the same response keeps its own count: one alternative (plus the prompt token).
  const json& echo_top = r.body["choices"][0]["logprobs"]["top_logprobs"];
  for (size_t i = 1; i < full.size(); ++i) EXPECT_LE(echo_top[i].size(), 2u) << i;

  // Chat: one list at the top of the response, as long as the rendered prompt.
  const Reply c = post(server(), "/v1/chat/completions",
                       json{{"messages", json::array({{{"role", "user"}, {"content", "Name a virtue."}}})},
                            {"max_tokens", 2}, {"prompt_logprobs", 0}});
  ASSERT_EQ(c.status, 200) << c.raw;
  ASSERT_EQ(c.body["prompt_logprobs"].size(), c.body["usage"]["prompt_tokens"].get<size_t>());
  EXPECT_TRUE(c.body["prompt_logprobs"][0].is_null());
  for (size_t i = 1; i < c.body["prompt_logprobs"].size(); ++i) EXPECT_EQ(c.body["prompt_logprobs"][i].size(), 1u);
  // Without the field, no list.
  const Reply plain = post(server(), "/v1/completions", json{{"prompt", kPrompt}, {"max_tokens", 1}});
  EXPECT_FALSE(plain.body["choices"][0].contains("prompt_logprobs"));
}

// vLLM's bad_words and allowed_token_ids through the server: the words are tokenized as they
// start a text and as they follow a space; the allowed ids give what logit_bias -100 on every
// other id gives.
TEST_F(Http, BadWordsAndAllowedTokenIds) {
  const json base = {{"prompt", kPrompt}, {"max_tokens", 16}, {"temperature", 0}};
  const Reply free_run = post(server(), "/v1/completions", base);
  ASSERT_EQ(free_run.status, 200) << free_run.raw;
  const std::string text = free_run.body["choices"][0]["text"];
  json banned = base;
  banned["bad_words"] = json::array({"the", "LORD"});
  const Reply r = post(server(), "/v1/completions", banned);
  ASSERT_EQ(r.status, 200) << r.raw;
  // Where `word` stands as a whole word in t (npos: nowhere).
  auto word_at = [](const std::string& t, const std::string& word) {
    for (size_t i = t.find(word); i != std::string::npos; i = t.find(word, i + 1)) {
      const bool starts = i == 0 || !std::isalpha(static_cast<unsigned char>(t[i - 1]));
      const bool ends = i + word.size() == t.size() || !std::isalpha(static_cast<unsigned char>(t[i + word.size()]));
      if (starts && ends) return i;
    }
    return std::string::npos;
  };
  ASSERT_NE(word_at(text, "the"), std::string::npos) << text;
  const std::string got = r.body["choices"][0]["text"];
  EXPECT_EQ(word_at(got, "the"), std::string::npos) << got;
  EXPECT_EQ(word_at(got, "LORD"), std::string::npos) << got;
  const size_t first = std::min(word_at(text, "the"), word_at(text, "LORD"));
  EXPECT_EQ(got.substr(0, first), text.substr(0, first)) << got;  // the same up to the first banned word
  json chat = {{"messages", json::array({{{"role", "user"}, {"content", "Say the word the."}}})},
               {"max_tokens", 12}, {"temperature", 0}, {"bad_words", json::array({"the"})}};
  const Reply c = post(server(), "/v1/chat/completions", chat);
  ASSERT_EQ(c.status, 200) << c.raw;
  EXPECT_EQ(word_at(c.body["choices"][0]["message"]["content"].get<std::string>(), "the"), std::string::npos)
      << c.raw;

  // allowed_token_ids against logit_bias.
  const std::vector<int32_t> free_ids = tok().encode(text, false);
  std::set<int32_t> allowed(free_ids.begin(), free_ids.end());
  for (int32_t t : {5, 50, 500}) allowed.insert(t);
  json a = base;
  a["allowed_token_ids"] = std::vector<int32_t>(allowed.begin(), allowed.end());
  a["logprobs"] = 0;
  a["return_tokens_as_token_ids"] = true;
  json b = base;
  json bias = json::object();
  for (int32_t t = 0; t < tok().vocab_size(); ++t)
    if (!allowed.count(t)) bias[std::to_string(t)] = -100;
  b["logit_bias"] = bias;
  const Reply ra = post(server(), "/v1/completions", a);
  const Reply rb = post(server(), "/v1/completions", b);
  ASSERT_EQ(ra.status, 200) << ra.raw;
  ASSERT_EQ(rb.status, 200) << rb.raw;
  EXPECT_EQ(ra.body["choices"][0]["text"], rb.body["choices"][0]["text"]);
  for (const auto& t : ra.body["choices"][0]["logprobs"]["tokens"]) {
    const int32_t id = std::stoi(t.get<std::string>().substr(std::string("token_id:").size()));
    EXPECT_TRUE(allowed.count(id)) << id;
  }
  // A structured output and allowed ids together: a 400 naming the field.
  json both = base;
  both["allowed_token_ids"] = {5};
  both["guided_choice"] = {"a", "b"};
  const Reply e = post(server(), "/v1/completions", both);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.body["error"]["param"], "allowed_token_ids");
}

TEST_F(Http, NChoicesUseOffsetSeeds) {
  const json body = {{"prompt", kPrompt}, {"max_tokens", 12}, {"temperature", 1.0}, {"seed", 7}, {"n", 3}};
  const Reply r = post(server(), "/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["choices"].size(), 3u);
  int completion = 0;
  for (int i = 0; i < 3; ++i) {
    const json& c = r.body["choices"][i];
    EXPECT_EQ(c["index"], i);
    // Choice i is the request alone with seed 7 + i.
    json one = body;
    one["n"] = 1;
    one["seed"] = 7 + i;
    const Reply alone = post(server(), "/v1/completions", one);
    EXPECT_EQ(c["text"], alone.body["choices"][0]["text"]) << i;
    completion += alone.body["usage"]["completion_tokens"].get<int>();
  }
  EXPECT_EQ(r.body["usage"]["completion_tokens"], completion);
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], tok().encode(kPrompt, true).size());  // counted once

  // Streaming with n: every choice gets its chunks, each ends with a finish_reason.
  json sbody = body;
  sbody["stream"] = true;
  const Stream s = stream(server(), "/v1/completions", sbody);
  std::vector<std::string> texts(3);
  std::vector<int> finished(3, 0);
  for (const auto& ch : s.chunks)
    for (const auto& c : ch["choices"]) {
      texts[c["index"].get<int>()] += c["text"].get<std::string>();
      finished[c["index"].get<int>()] += !c["finish_reason"].is_null();
    }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(texts[i], r.body["choices"][i]["text"]);
    EXPECT_EQ(finished[i], 1);
  }
}

TEST_F(Http, StopStrings) {
  const json base = {{"prompt", kPrompt}, {"max_tokens", 40}, {"temperature", 0}, {"ignore_eos", true}};
  const std::string full = post(server(), "/v1/completions", base).body["choices"][0]["text"];
  ASSERT_GE(full.size(), 20u);
  // A stop string from the middle of the greedy text.
  const std::string stop = full.substr(10, 4);
  const size_t at = full.find(stop);
  json body = base;
  body["stop"] = stop;
  Reply r = post(server(), "/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"], full.substr(0, at));
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r.body["choices"][0]["stop_reason"], stop);
  body["stop"] = json::array({"zzzz-never", stop});
  body["include_stop_str_in_output"] = true;
  r = post(server(), "/v1/completions", body);
  EXPECT_EQ(r.body["choices"][0]["text"], full.substr(0, at + stop.size()));
  // Streamed, the stop string never leaks out.
  body.erase("include_stop_str_in_output");
  body["stream"] = true;
  const Stream s = stream(server(), "/v1/completions", body);
  std::string text;
  for (const auto& ch : s.chunks) text += ch["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, full.substr(0, at));

  // A stop token id: stop_reason is that id as a JSON number (vLLM's type), and the output
  // ends with its first occurrence.
  SamplingParams sp = greedy(40);
  sp.ignore_eos = true;
  const auto want = direct(tok().encode(kPrompt, true), sp);
  ASSERT_GE(want.token_ids.size(), 6u);
  const int id = want.token_ids[5];
  const size_t first = static_cast<size_t>(std::find(want.token_ids.begin(), want.token_ids.end(), id) - want.token_ids.begin());
  json by_id = base;
  by_id["stop_token_ids"] = json::array({id});
  r = post(server(), "/v1/completions", by_id);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
  ASSERT_TRUE(r.body["choices"][0]["stop_reason"].is_number_integer()) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["stop_reason"].get<int>(), id);
  EXPECT_EQ(r.body["usage"]["completion_tokens"].get<size_t>(), first + 1) << r.raw;
}

TEST_F(Http, EmbeddingsNeedAnEmbeddingModel) {
  const Reply r = post(server(), "/v1/embeddings", json{{"input", "hello"}});
  EXPECT_EQ(r.status, 400) << r.raw;
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("--runner pooling"), std::string::npos) << r.raw;
  for (const auto& [path, body] : std::vector<std::pair<std::string, json>>{
           {"/v1/score", json{{"text_1", "a"}, {"text_2", "b"}}}, {"/v1/rerank", json{{"query", "a"}, {"documents", {"b"}}}}}) {
    const Reply e = post(server(), path, body);
    EXPECT_EQ(e.status, 400) << e.raw;
    EXPECT_NE(e.body["error"]["message"].get<std::string>().find("needs an embedding model"), std::string::npos) << e.raw;
  }
}

TEST_F(Http, TokenizeDetokenize) {
  const std::string text = "Blessed are the meek: for they shall inherit the earth.";
  const auto ids = tok().encode(text, true);
  Reply r = post(server(), "/tokenize", json{{"model", "tiny"}, {"prompt", text}, {"return_token_strs", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["tokens"], json(ids));
  EXPECT_EQ(r.body["count"], ids.size());
  EXPECT_EQ(r.body["max_model_len"], reference().max_model_len());
  ASSERT_EQ(r.body["token_strs"].size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(r.body["token_strs"][i], tok().id_to_piece(ids[i]));
  r = post(server(), "/tokenize", json{{"prompt", text}});
  EXPECT_TRUE(r.body["token_strs"].is_null());
  r = post(server(), "/detokenize", json{{"tokens", ids}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["prompt"], text);
}

// Every client mistake through HTTP: status, error.type and error.param as OpenAI shapes them.
TEST_F(Http, ClientErrors) {
  const int vocab = reference().vocab_size();
  const int max_len = reference().max_model_len();
  struct Case {
    std::string path, body;
    int status;
    std::string param;
    std::string message_has;
  };
  const std::string too_long = json{{"prompt", std::vector<int32_t>(max_len + 5, 1)}}.dump();
  // 50,000 levels under a field the template sees (it crashed the server: recursion): refused
  // for the whole body, before parsing; 300 levels pass that and meet the messages' own limit.
  const std::string deep = std::string(50000, '[') + std::string(50000, ']');
  const std::string deep300 = std::string(300, '[') + std::string(300, ']');
  std::vector<int32_t> every_id(static_cast<size_t>(vocab));
  for (int i = 0; i < vocab; ++i) every_id[static_cast<size_t>(i)] = i;
  const std::vector<Case> cases = {
      {"/v1/completions", "{\"prompt\": ", 400, "", "JSON"},
      {"/v1/completions", "{\"prompt\": \"\xff\xfe\"}", 400, "", "UTF-8"},
      {"/v1/completions", "{\"prompt\": 1.5}", 400, "prompt", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 0}", 400, "max_tokens", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": \"5\"}", 400, "max_tokens", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"temperature\": -1}", 400, "temperature", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"top_p\": 0}", 400, "top_p", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"top_k\": -5}", 400, "top_k", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"min_p\": 2}", 400, "min_p", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"n\": 0}", 400, "n", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"logprobs\": 50}", 400, "logprobs", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"presence_penalty\": 3}", 400, "presence_penalty", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"repetition_penalty\": -1}", 400, "repetition_penalty", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"bogus\": 1}", 400, "bogus", "bogus"},
      {"/v1/completions", json{{"prompt", {1, 2, vocab}}}.dump(), 400, "prompt", std::to_string(vocab)},
      {"/v1/completions", json{{"prompt", {1, -3}}}.dump(), 400, "prompt", "-3"},
      {"/v1/completions", json{{"prompt", "x"}, {"stop_token_ids", {vocab + 1}}}.dump(), 400, "stop_token_ids", "outside the vocabulary"},
      {"/v1/completions", json{{"prompt", "x"}, {"allowed_token_ids", {-1}}}.dump(), 400, "allowed_token_ids", "-1"},
      {"/v1/completions", json{{"prompt", "x"}, {"min_tokens", 1}, {"stop_token_ids", every_id}}.dump(), 400,
       "stop_token_ids", "every token of the vocabulary ends the sequence"},
      {"/v1/completions", too_long, 400, "prompt", std::to_string(max_len + 5)},
      {"/v1/completions", json{{"prompt", "x"}, {"model", "gpt-9"}}.dump(), 404, "model", "gpt-9"},
      // A NUL in a quoted value cut the message there.
      {"/v1/completions", "{\"prompt\": \"x\", \"model\": \"gp\\u0000t\"}", 404, "model", std::string("gp\0t` does not exist", 19)},
      {"/v1/chat/completions", "{\"messages\": []}", 400, "messages", ""},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 30, "
                               "\"logprobs\": true}", 400, "top_logprobs", ""},
      {"/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", std::string(max_len * 2, 'a')}}}}}.dump(),
       400, "messages", "maximum context length"},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\", \"extra\": " + deep + "}]}",
       400, "", "nests arrays and objects 50003 levels deep (at most 512)"},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\", \"extra\": " + deep300 + "}]}",
       400, "messages", "nested more than 256 levels"},
      {"/tokenize", "{\"prompt\": 3}", 400, "prompt", ""},
      {"/detokenize", json{{"tokens", {vocab}}}.dump(), 400, "tokens", ""},
      {"/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": [1, 2]}", 400, "logit_bias", "object"},
      {"/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"a7\": 1}}", 400, "logit_bias", "a7"},
      {"/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"-3\": 1}}", 400, "logit_bias", "not a token id"},
      {"/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"5\": \"high\"}}", 400, "logit_bias", "number"},
      {"/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"logit_bias", {{std::to_string(vocab), 1}}}}.dump(),
       400, "logit_bias", "outside the vocabulary"},
      {"/v1/completions", "{\"prompt\": \"x\", \"logit_bias\": {\"1\": 1, \"01\": 2}}", 400, "logit_bias", "token id 1 is listed twice"},
      {"/v1/nothing-here", "{}", 404, "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path + " " + c.body.substr(0, 120));
    const Reply r = post(server(), c.path, c.body);
    EXPECT_EQ(r.status, c.status) << r.raw;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.raw;
    const json& e = r.body["error"];
    EXPECT_EQ(e["type"], "invalid_request_error");
    if (c.param.empty()) {
      EXPECT_TRUE(e["param"].is_null()) << e.dump();
    } else {
      EXPECT_EQ(e["param"], c.param);
    }
    EXPECT_NE(e["message"].get<std::string>().find(c.message_has), std::string::npos) << e.dump();
  }
  // Unknown routes are JSON 404s too.
  EXPECT_EQ(get(server(), "/v1/nothing-here").status, 404);
  // The server is unharmed.
  EXPECT_EQ(get(server(), "/health").status, 200);
}

// One raw request on a fresh connection; returns the status line's code and the rest of the
// response, or 0 when nothing complete came back within 5 s (the server waiting for bytes
// that are never sent: httplib's own read timeout is 10 s).
struct RawReply {
  int status = 0;
  std::string head, body;
};
RawReply raw_exchange(int port, const std::string& request) {
  RawReply out;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return out;
  }
  std::string got;
  char buf[4096];
  for (;;) {
    const size_t end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::smatch m;
      const std::string head = got.substr(0, end);
      const bool has_len = std::regex_search(head, m, std::regex("Content-Length: ([0-9]+)", std::regex::icase));
      if (has_len && got.size() >= end + 4 + std::stoul(m[1])) {
        out.head = head;
        out.body = got.substr(end + 4, std::stoul(m[1]));
        out.status = std::stoi(head.substr(9, 3));
        break;
      }
    }
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// How a request frames its body, and methods a path does not take: answered at once with the
// status that says what is wrong (a POST without Content-Length used to wait out the 10 s read
// timeout, "Content-Length: -5" was a 413, a GET on a POST route a 404).
TEST_F(Http, BodyFramingAndMethods) {
  const std::string body = json{{"prompt", kPrompt}, {"max_tokens", 2}, {"temperature", 0}}.dump();
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  struct Case {
    std::string request;
    int status;
    std::string message_has, header_has;
  };
  // The same body in two chunks.
  const size_t cut = body.size() / 2;
  char sizes[64];
  std::snprintf(sizes, sizeof(sizes), "%zx|%zx", cut, body.size() - cut);
  const std::string s(sizes);
  const std::string chunked = head + "Transfer-Encoding: chunked\r\n\r\n" + s.substr(0, s.find('|')) + "\r\n" +
                              body.substr(0, cut) + "\r\n" + s.substr(s.find('|') + 1) + "\r\n" + body.substr(cut) +
                              "\r\n0\r\n\r\n";
  const std::string form_head =
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n";
  const std::string big = json{{"prompt", std::string(10000, ' ') + kPrompt}, {"max_tokens", 1}}.dump();
  const std::vector<Case> cases = {
      {head + "\r\n" + body, 411, "Length Required", ""},
      {head + "Content-Length: -5\r\n\r\n", 400, "Invalid Content-Length \\\"-5\\\"", ""},
      {head + "Content-Length: 12abc\r\n\r\n", 400, "Invalid Content-Length", ""},
      {head + "Transfer-Encoding: gzip\r\n\r\n", 400, "Unsupported Transfer-Encoding", ""},
      {"GET /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "allowed: POST", "Allow: POST, OPTIONS"},
      {"POST /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}", 405, "allowed: GET",
       "Allow: GET, OPTIONS"},
      {"DELETE /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 405, "DELETE /health", ""},
      // A DELETE without a body (no Content-Length, as fetch sends it) is answered at once too.
      {"DELETE /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "DELETE /health", "Allow: GET, OPTIONS"},
      {"DELETE /v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404, "Route not found: DELETE /v1/nothing", ""},
      {"DELETE /v1/responses/resp_x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404, "'resp_x' not found", ""},
      // Paths of pattern routes are known paths too: 405 with their methods.
      {"PUT /v1/responses/resp_x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 405,
       "allowed: DELETE, GET", "Allow: DELETE, GET, OPTIONS"},
      {"POST /v1/responses/resp_x/input_items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}", 405,
       "allowed: GET", "Allow: GET, OPTIONS"},
      {"GET /v1/responses/resp_x/outputs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404, "Route not found", ""},
      {chunked, 200, "text_completion", ""},
      {head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body, 200, "text_completion", ""},
      // What `curl -d` sends without -H: read as JSON; past httplib's 8 KiB form limit, a
      // 413 that says what to send (it said only "too large", far below --max-body).
      {form_head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body, 200, "text_completion", ""},
      {form_head + "Content-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big, 413,
       "limited to 8 KiB; send the JSON with \\\"Content-Type: application/json\\\"", ""},
      {head + "Content-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big, 200, "text_completion", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request.substr(0, 200));
    const RawReply r = raw_exchange(server().port(), c.request);
    EXPECT_EQ(r.status, c.status) << r.head << "\n" << r.body;
    EXPECT_NE(r.body.find(c.message_has), std::string::npos) << r.body;
    EXPECT_NE(r.head.find(c.header_has), std::string::npos) << r.head;
    if (c.status != 200) {
      EXPECT_TRUE(json::parse(r.body, nullptr, false).contains("error")) << r.body;
    }
  }
}

// An OpenAI tool-call round trip sends the assistant's turn with "content": null; the demo
// model's template concatenates message.content, so null must reach it as "" (as vLLM does).
TEST_F(Http, ToolCallTurnWithNullContent) {
  auto turn = [](const json& content) {
    json assistant = {{"role", "assistant"},
                      {"tool_calls", {{{"id", "c1"}, {"type", "function"},
                                       {"function", {{"name", "f"}, {"arguments", "{}"}}}}}}};
    if (!content.is_discarded()) assistant["content"] = content;
    return json{{"messages", {{{"role", "user"}, {"content", "hi"}}, assistant,
                              {{"role", "tool"}, {"content", "42"}, {"tool_call_id", "c1"}}}},
                {"max_tokens", 2}, {"temperature", 0}};
  };
  const Reply empty = post(server(), "/v1/chat/completions", turn(""));
  ASSERT_EQ(empty.status, 200) << empty.raw;
  for (const json& content : {json(nullptr), json(json::value_t::discarded)}) {
    const Reply r = post(server(), "/v1/chat/completions", turn(content));
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["usage"]["prompt_tokens"], empty.body["usage"]["prompt_tokens"]);
    EXPECT_EQ(r.body["choices"][0]["message"]["content"], empty.body["choices"][0]["message"]["content"]);
  }
}

// ---- /v1/responses ----------------------------------------------------------------------

// A streamed /v1/responses request's events (the body checked for the stream's shape).
std::vector<testing::SseEvent> response_events(const ServerProcess& s, json body) {
  body["stream"] = true;
  auto c = s.client();
  const auto r = c.Post("/v1/responses", body.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  EXPECT_EQ(r->body.find("[DONE]"), std::string::npos) << "the Responses API sends no [DONE]";
  auto events = testing::parse_sse_events(r->body);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].data["type"], events[i].type);
    EXPECT_EQ(events[i].data["sequence_number"], i);
  }
  return events;
}

// Each item's deltas (output_text, reasoning_text, function_call_arguments), concatenated.
std::map<std::string, std::string> item_deltas(const std::vector<testing::SseEvent>& events) {
  std::map<std::string, std::string> out;
  for (const auto& e : events)
    if (e.type.size() > 6 && e.type.compare(e.type.size() - 6, 6, ".delta") == 0)
      out[e.data["item_id"]] += e.data["delta"].get<std::string>();
  return out;
}

// The text of a response's message items.
std::string output_text(const json& response) {
  std::string text;
  for (const json& item : response["output"])
    if (item["type"] == "message") text += item["content"][0]["text"].get<std::string>();
  return text;
}

// The Responses API is the chat completion of the same conversation: same text, token counts
// and finish; streamed, the text deltas add up to it and the last event carries the response.
TEST_F(Http, ResponsesAreTheChatCompletionOfTheConversation) {
  struct Case {
    json input, messages;
    std::optional<std::string> instructions;
    int max_tokens;
  };
  const json history = json::parse(R"([
      {"role": "user", "content": [{"type": "input_text", "text": "What is the weather?"}]},
      {"type": "function_call", "call_id": "call_7", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
      {"type": "function_call_output", "call_id": "call_7", "output": "Sunny and warm."},
      {"role": "assistant", "content": [{"type": "output_text", "text": "It is sunny.", "annotations": []}]},
      {"role": "user", "content": "Tell me a fortune."}])");
  const json history_chat = json::parse(R"([
      {"role": "system", "content": "Answer in one line."},
      {"role": "user", "content": "What is the weather?"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_7", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_7", "content": "Sunny and warm."},
      {"role": "assistant", "content": "It is sunny."},
      {"role": "user", "content": "Tell me a fortune."}])");
  const Case cases[] = {
      {"Tell me a fortune.", {{{"role", "user"}, {"content", "Tell me a fortune."}}}, std::nullopt, 40},
      {"And the LORD said", {{{"role", "user"}, {"content", "And the LORD said"}}}, std::nullopt, 6},
      {history, history_chat, "Answer in one line.", 30},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input.dump());
    const Reply chat = post(server(), "/v1/chat/completions",
                            json{{"messages", c.messages}, {"max_tokens", c.max_tokens}, {"temperature", 0},
                                 {"logprobs", true}, {"top_logprobs", 2}});
    ASSERT_EQ(chat.status, 200) << chat.raw;
    json body = {{"model", "tiny"}, {"input", c.input}, {"max_output_tokens", c.max_tokens}, {"temperature", 0},
                 {"include", {"message.output_text.logprobs"}}, {"top_logprobs", 2}, {"metadata", {{"k", "v"}}}};
    if (c.instructions) body["instructions"] = *c.instructions;
    const Reply r = post(server(), "/v1/responses", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    const json& resp = r.body;
    EXPECT_EQ(resp["object"], "response");
    EXPECT_EQ(resp["id"].get<std::string>().rfind("resp_", 0), 0u);
    EXPECT_EQ(resp["model"], "tiny");
    EXPECT_EQ(resp["metadata"], json({{"k", "v"}}));
    EXPECT_EQ(resp["temperature"], 0);
    EXPECT_EQ(resp["max_output_tokens"], c.max_tokens);
    const json& choice = chat.body["choices"][0];
    ASSERT_EQ(resp["output"].size(), 1u) << r.raw;
    const json& item = resp["output"][0];
    EXPECT_EQ(item["type"], "message");
    EXPECT_EQ(item["role"], "assistant");
    EXPECT_EQ(item["id"].get<std::string>().rfind("msg_", 0), 0u);
    EXPECT_EQ(item["content"][0]["type"], "output_text");
    EXPECT_EQ(item["content"][0]["text"], choice["message"]["content"]);
    EXPECT_EQ(item["content"][0]["logprobs"], choice["logprobs"]["content"]);
    const bool cut = choice["finish_reason"] == "length";
    EXPECT_EQ(resp["status"], cut ? "incomplete" : "completed");
    EXPECT_EQ(item["status"], cut ? "incomplete" : "completed");
    if (cut) {
      EXPECT_EQ(resp["incomplete_details"]["reason"], "max_output_tokens");
    } else {
      EXPECT_TRUE(resp["incomplete_details"].is_null());
    }
    EXPECT_EQ(resp["usage"]["input_tokens"], chat.body["usage"]["prompt_tokens"]);
    EXPECT_EQ(resp["usage"]["output_tokens"], chat.body["usage"]["completion_tokens"]);
    EXPECT_EQ(resp["usage"]["total_tokens"], chat.body["usage"]["total_tokens"]);
    EXPECT_EQ(resp["usage"]["output_tokens_details"]["reasoning_tokens"], 0);

    const auto events = response_events(server(), body);
    ASSERT_GE(events.size(), 6u);
    EXPECT_EQ(events[0].type, "response.created");
    EXPECT_EQ(events[0].data["response"]["status"], "in_progress");
    EXPECT_TRUE(events[0].data["response"]["output"].empty());
    EXPECT_EQ(events[1].type, "response.in_progress");
    EXPECT_EQ(events.back().type, cut ? "response.incomplete" : "response.completed");
    const json& last = events.back().data["response"];
    EXPECT_EQ(last["id"], events[0].data["response"]["id"]);
    EXPECT_EQ(output_text(last), choice["message"]["content"]);
    EXPECT_EQ(last["output"][0]["content"][0]["logprobs"], choice["logprobs"]["content"]);
    EXPECT_EQ(item_deltas(events)[last["output"][0]["id"]], choice["message"]["content"]);
    EXPECT_EQ(last["usage"]["output_tokens"], resp["usage"]["output_tokens"]);
    // The delta events carry the tokens' logprobs, each once.
    json streamed = json::array();
    for (const auto& e : events)
      if (e.type == "response.output_text.delta")
        for (const json& lp : e.data["logprobs"]) streamed.push_back(lp);
    EXPECT_EQ(streamed, choice["logprobs"]["content"]);
  }
}

// A forced function call is a function_call item whose arguments follow the tool's schema;
// streamed, its arguments arrive as deltas; sent back with its output, the next turn runs.
TEST_F(Http, ResponsesFunctionCalls) {
  const json weather = json::parse(R"({"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]},
      "days": {"type": "integer"}}, "required": ["city"]})");
  const testing::SchemaOracle weather_args(weather);
  const json tools = json::array({{{"type", "function"}, {"name", "get_weather"}, {"parameters", weather}},
                                  {{"type", "function"}, {"name", "now"}, {"parameters", {{"type", "object"}}}}});
  const std::string brace = std::to_string(*tok().piece_to_id("}"));
  int closed = 0;
  for (int seed = 0; seed < 3; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const json user = {{"role", "user"}, {"content", "Weather in Paris?"}};
    json body = {{"input", {user}}, {"tools", tools}, {"tool_choice", {{"type", "function"}, {"name", "get_weather"}}},
                 {"max_output_tokens", 120}, {"seed", seed}, {"logit_bias", {{brace, 4}}}};
    const Reply r = post(server(), "/v1/responses", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["tools"], tools);
    if (r.body["status"] != "completed") continue;  // cut by max_output_tokens inside the arguments
    ++closed;
    const json& output = r.body["output"];
    ASSERT_EQ(output.size(), 1u) << r.raw;
    const json& call = output[0];
    EXPECT_EQ(call["type"], "function_call");
    EXPECT_EQ(call["name"], "get_weather");
    EXPECT_EQ(call["id"].get<std::string>().rfind("fc_", 0), 0u);
    EXPECT_EQ(call["call_id"].get<std::string>().rfind("call_", 0), 0u);
    const json args = json::parse(call["arguments"].get<std::string>());
    EXPECT_TRUE(weather_args.valid(args)) << args.dump();

    const auto events = response_events(server(), body);
    const json& last = events.back().data["response"];
    ASSERT_EQ(last["output"].size(), 1u);
    const json& streamed = last["output"][0];
    EXPECT_EQ(streamed["name"], "get_weather");
    EXPECT_EQ(json::parse(streamed["arguments"].get<std::string>()), args);
    EXPECT_EQ(item_deltas(events)[streamed["id"]], streamed["arguments"]);
    int arg_events = 0;
    for (const auto& e : events) arg_events += e.type == "response.function_call_arguments.delta";
    EXPECT_GT(arg_events, 1);

    // The next turn: the call as the model wrote it, and its output.
    json next = {{"input", {user, call, {{"type", "function_call_output"}, {"call_id", call["call_id"]},
                                         {"output", "Sunny, 25 C."}}}},
                 {"tools", tools}, {"max_output_tokens", 8}, {"temperature", 0}};
    const Reply turn = post(server(), "/v1/responses", next);
    ASSERT_EQ(turn.status, 200) << turn.raw;
    EXPECT_GT(turn.body["usage"]["input_tokens"].get<int>(), r.body["usage"]["input_tokens"].get<int>());
  }
  EXPECT_GT(closed, 0) << "no forced call was closed within max_output_tokens";
}

// Stored responses: GET /v1/responses/{id} returns them, and previous_response_id continues
// one as the chat completion of the whole conversation would.
TEST_F(Http, ResponsesStoredAndContinued) {
  const json first = {{"input", "Tell me a fortune."}, {"max_output_tokens", 12}, {"temperature", 0}};
  const Reply r1 = post(server(), "/v1/responses", first);
  ASSERT_EQ(r1.status, 200) << r1.raw;
  EXPECT_EQ(r1.body["store"], true);
  const std::string id = r1.body["id"];
  const Reply got = get(server(), "/v1/responses/" + id);
  ASSERT_EQ(got.status, 200) << got.raw;
  EXPECT_EQ(got.body, r1.body);

  json second = {{"input", "Another one."}, {"previous_response_id", id}, {"instructions", "Be brief."},
                 {"max_output_tokens", 12}, {"temperature", 0}};
  const Reply r2 = post(server(), "/v1/responses", second);
  ASSERT_EQ(r2.status, 200) << r2.raw;
  EXPECT_EQ(r2.body["previous_response_id"], id);
  const json messages = {{{"role", "system"}, {"content", "Be brief."}},
                         {{"role", "user"}, {"content", "Tell me a fortune."}},
                         {{"role", "assistant"}, {"content", output_text(r1.body)}},
                         {{"role", "user"}, {"content", "Another one."}}};
  const Reply chat = post(server(), "/v1/chat/completions",
                          json{{"messages", messages}, {"max_tokens", 12}, {"temperature", 0}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  EXPECT_EQ(output_text(r2.body), chat.body["choices"][0]["message"]["content"]);
  EXPECT_EQ(r2.body["usage"]["input_tokens"], chat.body["usage"]["prompt_tokens"]);

  // A streamed response is stored too, as its last event has it; and it continues further.
  const auto events = response_events(server(), second);
  ASSERT_FALSE(events.empty());
  const json& streamed = events.back().data["response"];
  EXPECT_EQ(output_text(streamed), output_text(r2.body));
  const Reply got2 = get(server(), "/v1/responses/" + streamed["id"].get<std::string>());
  ASSERT_EQ(got2.status, 200) << got2.raw;
  EXPECT_EQ(got2.body, streamed);
  const Reply third = post(server(), "/v1/responses",
                           json{{"input", "And?"}, {"previous_response_id", streamed["id"]}, {"max_output_tokens", 2}});
  ASSERT_EQ(third.status, 200) << third.raw;
  EXPECT_GT(third.body["usage"]["input_tokens"].get<int>(), r2.body["usage"]["input_tokens"].get<int>());

  // Input items: the first response's one message; the continuation's the whole conversation
  // it read (the first input, the first output, its own input), newest first unless asc.
  auto items = [&](const std::string& rid, const std::string& query) {
    return get(server(), "/v1/responses/" + rid + "/input_items" + query);
  };
  const Reply i1 = items(id, "");
  ASSERT_EQ(i1.status, 200) << i1.raw;
  EXPECT_EQ(i1.body["object"], "list");
  ASSERT_EQ(i1.body["data"].size(), 1u);
  const json& m1 = i1.body["data"][0];
  EXPECT_EQ(m1["type"], "message");
  EXPECT_EQ(m1["role"], "user");
  EXPECT_EQ(m1["status"], "completed");
  EXPECT_EQ(m1["content"], json::parse(R"([{"type": "input_text", "text": "Tell me a fortune."}])"));
  EXPECT_EQ(m1["id"].get<std::string>().rfind("msg_", 0), 0u) << m1;
  EXPECT_EQ(i1.body["first_id"], m1["id"]);
  EXPECT_EQ(i1.body["last_id"], m1["id"]);
  EXPECT_EQ(i1.body["has_more"], false);
  const std::string id2 = r2.body["id"];
  const Reply asc = items(id2, "?order=asc");
  ASSERT_EQ(asc.status, 200) << asc.raw;
  json expected = json::array({m1});
  for (const json& o : r1.body["output"]) expected.push_back(o);
  ASSERT_EQ(asc.body["data"].size(), expected.size() + 1) << asc.raw;
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(asc.body["data"][i], expected[i]) << i;
  const json& m2 = asc.body["data"].back();
  EXPECT_EQ(m2["content"][0]["text"], "Another one.");
  const Reply desc = items(id2, "");
  ASSERT_EQ(desc.status, 200) << desc.raw;
  json reversed = asc.body["data"];
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_EQ(desc.body["data"], reversed);
  // Pages: limit, then after the last item of a page, and before an item.
  const Reply page1 = items(id2, "?order=asc&limit=1");
  ASSERT_EQ(page1.status, 200) << page1.raw;
  EXPECT_EQ(page1.body["data"], json::array({m1}));
  EXPECT_EQ(page1.body["has_more"], true);
  const Reply page2 = items(id2, "?order=asc&limit=100&after=" + m1["id"].get<std::string>());
  ASSERT_EQ(page2.status, 200) << page2.raw;
  EXPECT_EQ(page2.body["data"].size(), expected.size());
  EXPECT_EQ(page2.body["data"][0], asc.body["data"][1]);
  EXPECT_EQ(page2.body["has_more"], false);
  const Reply page0 = items(id2, "?before=" + m1["id"].get<std::string>());  // desc: everything newer
  ASSERT_EQ(page0.status, 200) << page0.raw;
  EXPECT_EQ(page0.body["data"].size(), expected.size());
  EXPECT_EQ(page0.body["data"][0], m2);
  for (const auto& [query, param] : std::vector<std::pair<std::string, std::string>>{
           {"?limit=0", "limit"}, {"?limit=101", "limit"}, {"?limit=x", "limit"}, {"?order=up", "order"},
           {"?after=msg_unknown", "after"}, {"?limit=1&limit=2", "limit"}}) {
    const Reply bad = items(id2, query);
    EXPECT_EQ(bad.status, 400) << query << " " << bad.raw;
    EXPECT_EQ(bad.body["error"]["param"], param) << query;
  }
  EXPECT_EQ(items("resp_unknown", "").status, 404);

  // store false: not kept.
  json unstored = first;
  unstored["store"] = false;
  const Reply r3 = post(server(), "/v1/responses", unstored);
  ASSERT_EQ(r3.status, 200) << r3.raw;
  EXPECT_EQ(r3.body["store"], false);
  EXPECT_EQ(get(server(), "/v1/responses/" + r3.body["id"].get<std::string>()).status, 404);
  const Reply orphan = post(server(), "/v1/responses",
                            json{{"input", "x"}, {"previous_response_id", r3.body["id"]}});
  EXPECT_EQ(orphan.status, 404) << orphan.raw;
  EXPECT_EQ(orphan.body["error"]["param"], "previous_response_id");
  EXPECT_EQ(get(server(), "/v1/responses/resp_unknown").status, 404);
}

// POST /invocations (SageMaker's route, as vLLM has it): "messages" is a chat completion,
// "prompt" a completion, "input" embeddings (refused here: a generating model); anything else
// is a 400.
TEST_F(Http, InvocationsPicksTheRouteByTheBody) {
  const json chat = {{"messages", {{{"role", "user"}, {"content", "Tell me a fortune."}}}}, {"max_tokens", 6},
                     {"temperature", 0}};
  const Reply a = post(server(), "/invocations", chat), b = post(server(), "/v1/chat/completions", chat);
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body["object"], "chat.completion");
  EXPECT_EQ(a.body["choices"][0]["message"]["content"], b.body["choices"][0]["message"]["content"]);
  const json completion = {{"prompt", kPrompt}, {"max_tokens", 6}, {"temperature", 0}};
  const Reply c = post(server(), "/invocations", completion), d = post(server(), "/v1/completions", completion);
  ASSERT_EQ(c.status, 200) << c.raw;
  EXPECT_EQ(c.body["object"], "text_completion");
  EXPECT_EQ(c.body["choices"][0]["text"], d.body["choices"][0]["text"]);
  const Reply e = post(server(), "/invocations", json{{"input", "hello"}});
  EXPECT_EQ(e.status, 400) << e.raw;
  EXPECT_EQ(e.raw, post(server(), "/v1/embeddings", json{{"input", "hello"}}).raw);
  const Reply f = post(server(), "/invocations", json{{"text", "hello"}});
  EXPECT_EQ(f.status, 400) << f.raw;
  EXPECT_NE(f.raw.find("/invocations takes"), std::string::npos) << f.raw;
  EXPECT_EQ(post(server(), "/invocations", std::string("[1]")).status, 400);
}

// Background responses: answered at once as queued, generated on the server's own thread,
// polled with GET until they end with what the same request gives in the foreground;
// cancelled while they run; refused where they cannot be kept.
TEST_F(Http, ResponsesInTheBackground) {
  const json fg = {{"input", "Tell me a fortune."}, {"max_output_tokens", 12}, {"temperature", 0}};
  json bg = fg;
  bg["background"] = true;
  const Reply queued = post(server(), "/v1/responses", bg);
  ASSERT_EQ(queued.status, 200) << queued.raw;
  EXPECT_EQ(queued.body["status"], "queued");
  EXPECT_EQ(queued.body["background"], true);
  EXPECT_EQ(queued.body["output"], json::array());
  EXPECT_TRUE(queued.body["usage"].is_null());
  const std::string id = queued.body["id"];
  auto poll = [&](const std::string& rid) {
    Reply r;
    for (int i = 0; i < 600; ++i) {  // up to 60 s
      r = get(server(), "/v1/responses/" + rid);
      if (r.status != 200 || (r.body["status"] != "queued" && r.body["status"] != "in_progress")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  };
  const Reply done = poll(id);
  ASSERT_EQ(done.status, 200) << done.raw;
  EXPECT_EQ(done.body["status"], "completed") << done.raw;
  const Reply ref = post(server(), "/v1/responses", fg);
  ASSERT_EQ(ref.status, 200) << ref.raw;
  EXPECT_EQ(ref.body["background"], false);
  EXPECT_EQ(output_text(done.body), output_text(ref.body));
  EXPECT_EQ(done.body["usage"]["output_tokens"], ref.body["usage"]["output_tokens"]);
  EXPECT_EQ(get(server(), "/v1/responses/" + id + "/input_items").body["data"][0]["content"][0]["text"],
            "Tell me a fortune.");
  // Ended: it continues as a foreground response would, and cannot be cancelled.
  const Reply next = post(server(), "/v1/responses",
                          json{{"input", "Another one."}, {"previous_response_id", id}, {"max_output_tokens", 4}});
  EXPECT_EQ(next.status, 200) << next.raw;
  const Reply late = post(server(), "/v1/responses/" + id + "/cancel", json::object());
  EXPECT_EQ(late.status, 400) << late.raw;
  EXPECT_NE(late.raw.find("already ended (status completed)"), std::string::npos) << late.raw;
  const Reply fg_cancel = post(server(), "/v1/responses/" + ref.body["id"].get<std::string>() + "/cancel", json::object());
  EXPECT_EQ(fg_cancel.status, 400) << fg_cancel.raw;
  EXPECT_NE(fg_cancel.raw.find("not a background response"), std::string::npos) << fg_cancel.raw;
  EXPECT_EQ(post(server(), "/v1/responses/resp_unknown/cancel", json::object()).status, 404);

  // Refused where it cannot be kept.
  json unstored = bg;
  unstored["store"] = false;
  const Reply r = post(server(), "/v1/responses", unstored);
  EXPECT_EQ(r.status, 400) << r.raw;
  EXPECT_EQ(r.body["error"]["param"], "background");
}

// Background responses that stream: POST with "stream" follows the events that the server's
// own thread writes (response.created and response.queued first, then in_progress; sequence
// numbers 0, 1, ...), with the foreground's text; GET ?stream=true replays them byte for
// byte, from starting_after + 1 when given; a client that hangs up does not end the response,
// and reads the rest later. Streaming a foreground response, or bad query values, are 400s.
TEST_F(Http, ResponsesInTheBackgroundStream) {
  const json bg = {{"input", "Tell me a fortune."}, {"max_output_tokens", 12}, {"temperature", 0},
                   {"background", true}, {"stream", true}};
  auto c = server().client();
  const auto r = c.Post("/v1/responses", bg.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto events = testing::parse_sse_events(r->body);
  ASSERT_GE(events.size(), 6u) << r->body;
  EXPECT_EQ(events[0].type, "response.created");
  EXPECT_EQ(events[0].data["response"]["status"], "queued");
  EXPECT_EQ(events[1].type, "response.queued");
  EXPECT_EQ(events[2].type, "response.in_progress");
  EXPECT_EQ(events[2].data["response"]["status"], "in_progress");
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].data["sequence_number"], i) << events[i].type;
  EXPECT_EQ(events.back().type, "response.completed");
  const json final = events.back().data["response"];
  const std::string id = final["id"];
  std::string text;
  for (const auto& e : events)
    if (e.type == "response.output_text.delta") text += e.data["delta"].get<std::string>();
  json fg = bg;
  fg.erase("background");
  fg.erase("stream");
  const Reply ref = post(server(), "/v1/responses", fg);
  ASSERT_EQ(ref.status, 200) << ref.raw;
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text, output_text(ref.body));
  EXPECT_EQ(output_text(final), text);
  EXPECT_EQ(final["usage"]["output_tokens"], ref.body["usage"]["output_tokens"]);
  EXPECT_EQ(get(server(), "/v1/responses/" + id).body, final);
  // Replayed: whole, after a sequence number, past the end.
  EXPECT_EQ(get(server(), "/v1/responses/" + id + "?stream=true").raw, r->body);
  const auto tail = testing::parse_sse_events(get(server(), "/v1/responses/" + id + "?stream=true&starting_after=3").raw);
  ASSERT_EQ(tail.size(), events.size() - 4);
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(tail[i].data, events[i + 4].data);
  const Reply past = get(server(), "/v1/responses/" + id + "?stream=true&starting_after=" + std::to_string(events.size() + 3));
  EXPECT_EQ(past.status, 200);
  EXPECT_EQ(past.raw, "");

  // Hung up after six events: the response runs to its end, and the rest can be read later.
  const json longer = {{"input", "Tell me a story."}, {"max_output_tokens", 200}, {"ignore_eos", true},
                       {"temperature", 0}, {"background", true}, {"stream", true}};
  SseClient sse(server().url());
  std::string lid;
  int seen = 0;
  const SseResponse hung = sse.post("/v1/responses", longer.dump(), [&](std::string_view data) {
    if (lid.empty()) lid = json::parse(data)["response"]["id"];
    return ++seen < 6;
  });
  EXPECT_TRUE(hung.stopped);
  ASSERT_FALSE(lid.empty());
  Reply done;
  for (int i = 0; i < 600; ++i) {  // up to 60 s
    done = get(server(), "/v1/responses/" + lid);
    if (done.body.value("status", "") != "queued" && done.body.value("status", "") != "in_progress") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(done.body["status"], "incomplete") << done.raw;
  EXPECT_EQ(done.body["usage"]["output_tokens"], 200) << done.raw;
  const auto rest = testing::parse_sse_events(get(server(), "/v1/responses/" + lid + "?stream=true&starting_after=5").raw);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().data["sequence_number"], 6);
  EXPECT_EQ(rest.back().type, "response.incomplete");
  EXPECT_EQ(rest.back().data["response"], done.body);

  // Refused: a foreground response's events (none are kept), bad query values.
  const std::string fid = ref.body["id"];
  for (const auto& [query, param] : std::vector<std::pair<std::string, std::string>>{
           {"/v1/responses/" + fid + "?stream=true", "stream"},
           {"/v1/responses/" + id + "?stream=yes", "stream"},
           {"/v1/responses/" + id + "?stream=true&starting_after=-1", "starting_after"},
           {"/v1/responses/" + id + "?stream=true&starting_after=x", "starting_after"},
           {"/v1/responses/" + id + "?starting_after=2", "starting_after"}}) {
    const Reply bad = get(server(), query);
    EXPECT_EQ(bad.status, 400) << query << " " << bad.raw;
    EXPECT_EQ(bad.body.value("/error/param"_json_pointer, ""), param) << query;
  }
}

// A running background response, on a server whose steps take at least 5 ms (so that it is
// still running whatever the machine): its POST stream hung up, GET ?stream=true follows its
// events live until a cancel ends the stream; the cancelled reply, and every later GET, carry the tokens so far;
// a continuation must wait for it; a DELETE ends it and it is gone.
TEST(HttpBackground, FollowedLiveThenCancelledOrDeleted) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                   "127.0.0.1", "--port", "0"},
                  {{"TINYLLM_DEBUG_STEP_PAUSE_S", "0.005"}});
  ASSERT_TRUE(s.wait_healthy());
  const int max_len = get(s, "/v1/models").body["data"][0]["max_model_len"];
  const json longer = {{"input", "Tell me a story."}, {"max_output_tokens", max_len - 64}, {"ignore_eos", true},
                       {"background", true}};
  // Streamed, and hung up after four events: it runs on (the live reader below sees its tokens).
  json streamed = longer;
  streamed["stream"] = true;
  SseClient sse(s.url());
  std::string rid;
  int seen = 0;
  const SseResponse hung = sse.post("/v1/responses", streamed.dump(), [&](std::string_view data) {
    if (rid.empty()) rid = json::parse(data)["response"]["id"];
    return ++seen < 4;
  });
  EXPECT_TRUE(hung.stopped);
  ASSERT_FALSE(rid.empty());
  // Still running: a continuation must wait.
  const Reply early = post(s, "/v1/responses", json{{"input", "x"}, {"previous_response_id", rid}});
  EXPECT_EQ(early.status, 400) << early.raw;
  EXPECT_EQ(early.body["error"]["param"], "previous_response_id");
  std::mutex mu;
  std::string live;
  std::thread reader([&] {
    auto c = s.client();
    c.Get(("/v1/responses/" + rid + "?stream=true&starting_after=0").c_str(), [&](const char* data, size_t n) {
      std::lock_guard<std::mutex> lock(mu);
      live.append(data, n);
      return true;
    });
  });
  auto deltas = [&] {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    const std::string key = "event: response.output_text.delta\n";
    for (size_t at = live.find(key); at != std::string::npos; at = live.find(key, at + 1)) ++n;
    return n;
  };
  for (int i = 0; i < 6000 && deltas() < 40; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const Reply cancelled = post(s, "/v1/responses/" + rid + "/cancel", json::object());
  reader.join();  // the stream ends with the job
  ASSERT_EQ(cancelled.status, 200) << cancelled.raw;
  EXPECT_EQ(cancelled.body["status"], "cancelled");
  EXPECT_LT(cancelled.body["usage"]["output_tokens"].get<int>(), max_len - 64);
  EXPECT_EQ(get(s, "/v1/responses/" + rid).body, cancelled.body);
  EXPECT_EQ(post(s, "/v1/responses/" + rid + "/cancel", json::object()).body, cancelled.body);
  const auto events = testing::parse_sse_events(live);
  ASSERT_GE(events.size(), 40u);
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].data["sequence_number"], i + 1) << events[i].type;
    if (events[i].type == "response.output_text.delta") text += events[i].data["delta"].get<std::string>();
  }
  EXPECT_EQ(events.front().type, "response.queued");
  EXPECT_NE(events.back().type, "response.completed");
  EXPECT_EQ(output_text(cancelled.body).substr(0, text.size()), text);
  // Deleted while it runs: it ends, and is gone.
  const Reply doomed = post(s, "/v1/responses", longer);
  ASSERT_EQ(doomed.status, 200) << doomed.raw;
  auto c = s.client();
  const auto del = c.Delete(("/v1/responses/" + doomed.body["id"].get<std::string>()).c_str());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200) << del->body;
  EXPECT_EQ(get(s, "/v1/responses/" + doomed.body["id"].get<std::string>()).status, 404);
  EXPECT_EQ(s.stop(), 0);
}

// truncation "auto": a conversation longer than the context loses its oldest messages until it
// fits, and then answers as the chat completion of what is left; "disabled" refuses it.
TEST_F(Http, ResponsesTruncationAutoDropsTheOldestMessages) {
  auto repeat = [](int n) {
    std::string t;
    for (int i = 0; i < n; ++i) t += "And the LORD said unto Moses, ";
    return t;
  };
  const json input = {{{"role", "user"}, {"content", repeat(200)}},
                      {{"role", "assistant"}, {"content", repeat(120)}},
                      {{"role", "user"}, {"content", "Tell me a fortune."}}};
  const int max_len = reference().max_model_len();
  const Reply whole = post(server(), "/tokenize", json{{"messages", input}});
  ASSERT_EQ(whole.status, 200) << whole.raw;
  ASSERT_GE(whole.body["count"].get<int>(), max_len) << "the conversation must not fit";
  const json kept = json::array({input[1], input[2]});
  const Reply rest = post(server(), "/tokenize", json{{"messages", kept}});
  ASSERT_LT(rest.body["count"].get<int>(), max_len) << "its last two messages must fit";

  json body = {{"input", input}, {"max_output_tokens", 6}, {"temperature", 0}, {"store", false}};
  const Reply refused = post(server(), "/v1/responses", body);
  EXPECT_EQ(refused.status, 400) << refused.raw;
  EXPECT_EQ(refused.body["error"]["param"], "input");
  body["truncation"] = "auto";
  const Reply r = post(server(), "/v1/responses", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["truncation"], "auto");
  const Reply chat = post(server(), "/v1/chat/completions",
                          json{{"messages", kept}, {"max_tokens", 6}, {"temperature", 0}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  EXPECT_EQ(r.body["usage"]["input_tokens"], chat.body["usage"]["prompt_tokens"]);
  EXPECT_EQ(output_text(r.body), chat.body["choices"][0]["message"]["content"]);
  // An oldest message too long even at its fewest tokens (Tokenizer::max_input_bytes_per_token)
  // goes the same way, without the conversation holding it being tokenized.
  const size_t bound = tok().max_input_bytes_per_token();
  std::string huge;
  while (huge.size() <= bound * static_cast<size_t>(max_len)) huge += repeat(100);
  body["input"] = json::array({{{"role", "user"}, {"content", huge}}, input[1], input[2]});
  const Reply dropped = post(server(), "/v1/responses", body);
  ASSERT_EQ(dropped.status, 200) << dropped.raw.substr(0, 400);
  EXPECT_EQ(dropped.body["usage"]["input_tokens"], chat.body["usage"]["prompt_tokens"]);
  EXPECT_EQ(output_text(dropped.body), chat.body["choices"][0]["message"]["content"]);
  // A last message longer than the context alone is still refused.
  body["input"] = repeat(400);
  const Reply alone = post(server(), "/v1/responses", body);
  EXPECT_EQ(alone.status, 400) << alone.raw;
}

TEST_F(Http, ResponsesClientErrors) {
  const std::pair<json, std::string> cases[] = {
      {json{{"input", json::array()}}, "input"},
      {json{{"input", "x"}, {"previous_response_id", 7}}, "previous_response_id"},
      {json{{"input", "x"}, {"model", "other"}}, "model"},
      {json{{"input", "x"}, {"tools", {{{"type", "file_search"}}}}}, "tools"},
      {json{{"input", {{{"role", "user"}, {"content", {{{"type", "input_file"}, {"file_id", "f"}}}}}}}}, "input"},
  };
  for (const auto& [body, param] : cases) {
    const Reply r = post(server(), "/v1/responses", body);
    EXPECT_EQ(r.status, param == "model" ? 404 : 400) << r.raw;
    EXPECT_EQ(r.body["error"]["param"], param) << r.raw;
  }
  const Reply bad = post(server(), "/v1/responses", std::string("{\"input\": "));
  EXPECT_EQ(bad.status, 400) << bad.raw;
  EXPECT_EQ(get(server(), "/v1/responses").status, 405);
  // A conversation longer than the context.
  std::string longer;
  for (int i = 0; i < 1200; ++i) longer += " And the LORD said";
  const Reply too_long = post(server(), "/v1/responses", json{{"input", longer}});
  EXPECT_EQ(too_long.status, 400) << too_long.raw;
  EXPECT_EQ(too_long.body["error"]["param"], "input") << too_long.raw;
}

TEST_F(Http, MetricsCountWhatWasServed) {
  const json body = {{"prompt", kPrompt}, {"max_tokens", 5}, {"temperature", 0}, {"ignore_eos", true}};
  auto metric = [](const std::string& text, const std::string& name) {
    const std::regex re("^" + std::regex_replace(name, std::regex(R"([{}\[\]().*+?^$|\\])"), R"(\$&)") +
                        R"(\{model_name="tiny"[^}]*\} ([0-9.e+-]+)$)");
    std::smatch m;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line))
      if (std::regex_match(line, m, re)) return std::stod(m[1]);
    return -1.0;
  };
  const std::string before = get(server(), "/metrics").raw;
  EXPECT_EQ(metric(before, "vllm:cache_config_info"), 1.0) << before;
  EXPECT_NE(before.find("vllm:cache_config_info{model_name=\"tiny\",block_size=\"16\",cache_dtype=\"auto\","
                        "enable_prefix_caching=\"True\""),
            std::string::npos)
      << before;
  const double gen0 = metric(before, "vllm:generation_tokens_total");
  const double ttft0 = metric(before, "vllm:time_to_first_token_seconds_count");
  ASSERT_GE(gen0, 0);
  const Reply served = post(server(), "/v1/completions", body);
  ASSERT_EQ(served.status, 200);
  const auto m = get(server(), "/metrics");
  ASSERT_EQ(m.status, 200);
  // The per-request histograms (vLLM's): one more observation each, of this request's values,
  // and phases that fit inside its end-to-end time.
  auto delta = [&](const std::string& name) { return metric(m.raw, name) - metric(before, name); };
  for (const char* h : {"vllm:request_queue_time_seconds", "vllm:request_prefill_time_seconds",
                        "vllm:request_decode_time_seconds", "vllm:request_inference_time_seconds",
                        "vllm:request_prompt_tokens", "vllm:request_generation_tokens", "vllm:request_params_max_tokens",
                        "vllm:request_params_n", "vllm:e2e_request_latency_seconds"})
    EXPECT_EQ(delta(std::string(h) + "_count"), 1) << h;
  EXPECT_EQ(delta("vllm:request_generation_tokens_sum"), 5);
  EXPECT_EQ(delta("vllm:request_params_max_tokens_sum"), 5);
  EXPECT_EQ(delta("vllm:request_params_n_sum"), 1);
  // Engine steps: the prompt's (one chunk), then one per later token; every token scheduled
  // is counted in some step.
  EXPECT_GE(delta("vllm:iteration_tokens_total_count"), 5);
  EXPECT_GE(delta("vllm:iteration_tokens_total_sum"), served.body["usage"]["prompt_tokens"].get<double>() + 4);
  EXPECT_EQ(delta("vllm:request_prompt_tokens_sum"), served.body["usage"]["prompt_tokens"].get<double>());
  const double e2e = delta("vllm:e2e_request_latency_seconds_sum");
  const double queue = delta("vllm:request_queue_time_seconds_sum");
  const double inference = delta("vllm:request_inference_time_seconds_sum");
  const double prefill = delta("vllm:request_prefill_time_seconds_sum");
  const double decode = delta("vllm:request_decode_time_seconds_sum");
  EXPECT_GE(queue, 0);
  EXPECT_GT(decode, 0);  // four tokens after the first
  EXPECT_NEAR(prefill + decode, inference, 1e-6);
  EXPECT_LE(queue + inference, e2e + 1e-6);
  EXPECT_LE(prefill, delta("vllm:time_to_first_token_seconds_sum") + 1e-6);
  const std::string bucket = "vllm:request_generation_tokens_bucket{le=\"5.0\",model_name=\"tiny\"} ";
  EXPECT_NE(m.raw.find(bucket), std::string::npos) << "vLLM's 1-2-5 token buckets";
  EXPECT_GE(metric(m.raw, "vllm:generation_tokens_total"), gen0 + 5);
  EXPECT_EQ(metric(m.raw, "vllm:time_to_first_token_seconds_count"), ttft0 + 1);
  EXPECT_GE(metric(m.raw, "vllm:prompt_tokens_total"), 1);
  EXPECT_GE(metric(m.raw, "vllm:e2e_request_latency_seconds_count"), 1);
  EXPECT_GE(metric(m.raw, "vllm:inter_token_latency_seconds_count"), 4);
  EXPECT_GE(metric(m.raw, "vllm:prefix_cache_queries_total"), 0);
  EXPECT_GE(metric(m.raw, "vllm:prefix_cache_hits_total"), 0);
  EXPECT_GE(metric(m.raw, "vllm:num_requests_running"), 0);
  EXPECT_GE(metric(m.raw, "vllm:num_requests_waiting"), 0);
  EXPECT_GE(metric(m.raw, "vllm:kv_cache_usage_perc"), 0);
}

// ---- disconnects and concurrency ---------------------------------------------------------

// Sends a request on a raw socket and closes it after `delay` without reading a byte.
void send_and_hang_up(int port, const std::string& path, const std::string& body, double delay) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::this_thread::sleep_for(std::chrono::duration<double>(delay));
  close(fd);
}

json engine_state(const ServerProcess& s) { return get(s, "/debug/engine").body; }

// vllm:request_success_total{finished_reason="abort"}.
double aborted_requests(const ServerProcess& s) {
  const std::string text = get(s, "/metrics").raw;
  const std::string key = "finished_reason=\"abort\"} ";
  const size_t at = text.find(key);
  return at == std::string::npos ? -1.0 : std::stod(text.substr(at + key.size()));
}

// Waits until `want` requests have been counted as aborted (a handler counts its abort when
// it notices the hang-up, up to 50 ms later, so the engine can look idle before that, e.g.
// while a hung-up request is still being parsed). Returns the last count read.
double wait_aborted(const ServerProcess& s, double want, double timeout = 15.0) {
  const double deadline = now_seconds() + timeout;
  double n = aborted_requests(s);
  while (n < want && now_seconds() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    n = aborted_requests(s);
  }
  return n;
}

// Waits until nothing runs or waits and every KV block is back in the pool.
bool wait_idle(const ServerProcess& s, json& state, double timeout = 15.0) {
  const double deadline = now_seconds() + timeout;
  do {
    state = engine_state(s);
    if (state["num_running"] == 0 && state["num_waiting"] == 0 && state["num_used_kv_blocks"] == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (now_seconds() < deadline);
  return false;
}

TEST_F(Http, DisconnectsAbortAndFreeKv) {
  const double aborted0 = aborted_requests(server());
  const json long_gen = {{"prompt", kPrompt}, {"max_tokens", 1500}, {"temperature", 0}, {"ignore_eos", true}};
  // Non-streaming, gone during decode.
  send_and_hang_up(server().port(), "/v1/completions", long_gen.dump(), 0.3);
  // Streaming, gone after two chunks.
  json s = long_gen;
  s["stream"] = true;
  SseClient client(server().url());
  int chunks = 0;
  const auto r = client.post("/v1/completions", s.dump(), [&](std::string_view) { return ++chunks < 2; });
  EXPECT_TRUE(r.stopped);
  // Streaming, gone during prefill of a long prompt.
  json p = long_gen;
  p["prompt"] = std::vector<int32_t>(1500, 42);
  p["max_tokens"] = 500;
  p["stream"] = true;
  send_and_hang_up(server().port(), "/v1/completions", p.dump(), 0.0);
  // Chat, streaming, gone right after the role chunk.
  json c = {{"messages", {{{"role", "user"}, {"content", "Talk for a long time."}}}},
            {"max_tokens", 1500}, {"ignore_eos", true}, {"stream", true}};
  const auto rc = client.post("/v1/chat/completions", c.dump(), [](std::string_view) { return false; });
  EXPECT_TRUE(rc.stopped);

  // All four aborted, not run to their 1500 tokens, and their KV blocks back in the pool.
  EXPECT_EQ(wait_aborted(server(), aborted0 + 4, 10.0), aborted0 + 4);
  json state;
  EXPECT_TRUE(wait_idle(server(), state, 10.0)) << state.dump();
  EXPECT_EQ(aborted_requests(server()), aborted0 + 4);  // and no more
  EXPECT_EQ(post(server(), "/v1/completions", json{{"prompt", "A"}, {"max_tokens", 2}}).status, 200);
}

TEST_F(Http, SixtyFourConcurrentStreamsWithDisconnects) {
  constexpr int kRequests = 72;
  std::mt19937 rng(1234);
  struct Job {
    json body;
    int kind = 0;  // 0: read to the end, 1: hang up in prefill, 2: hang up in decode
    std::string text;
    int completion_tokens = -1;
    bool ok = false;
  };
  std::vector<Job> jobs(kRequests);
  const double aborted0 = aborted_requests(server());
  for (int i = 0; i < kRequests; ++i) {
    Job& j = jobs[i];
    j.kind = i % 8 == 3 ? 1 : i % 8 == 5 ? 2 : 0;
    const int prompt_len = j.kind == 1 ? 1200 : 4 + (i * 37) % 300;
    std::vector<int32_t> prompt(prompt_len);
    for (auto& t : prompt) t = std::uniform_int_distribution<int>(0, 4000)(rng);
    j.body = {{"prompt", prompt}, {"max_tokens", j.kind ? 1000 : 4 + (i * 13) % 48}, {"temperature", 0},
              {"ignore_eos", true}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  }
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      Job& j = jobs[i];
      ready++;
      while (ready.load() < kRequests) std::this_thread::yield();
      if (j.kind == 1) {
        send_and_hang_up(server().port(), "/v1/completions", j.body.dump(), 0.01);
        return;
      }
      SseClient client(server().url(), 300);
      int chunks = 0;
      bool done = false;
      const auto r = client.post("/v1/completions", j.body.dump(), [&](std::string_view data) {
        if (data == "[DONE]") {
          done = true;
          return true;
        }
        const json ch = json::parse(data);
        if (ch["choices"].empty()) {
          j.completion_tokens = ch["usage"]["completion_tokens"];
        } else {
          j.text += ch["choices"][0]["text"].get<std::string>();
        }
        return !(j.kind == 2 && ++chunks >= 3);
      });
      j.ok = r.status == 200 && done;
    });
  }
  for (auto& t : threads) t.join();

  int completed = 0;
  for (int i = 0; i < kRequests; ++i) {
    const Job& j = jobs[i];
    if (j.kind != 0) continue;
    ASSERT_TRUE(j.ok) << "request " << i;
    EXPECT_EQ(j.completion_tokens, j.body["max_tokens"]) << i;
    ++completed;
  }
  EXPECT_GE(completed, 54);

  // Every client that hung up (in prefill or in decode) was aborted, none ran to the end.
  int hung_up = 0;
  for (const Job& j : jobs) hung_up += j.kind != 0;
  EXPECT_EQ(wait_aborted(server(), aborted0 + hung_up), aborted0 + hung_up);
  json state;
  EXPECT_TRUE(wait_idle(server(), state)) << "KV not returned after disconnects: " << state.dump();
  EXPECT_EQ(aborted_requests(server()), aborted0 + hung_up);

  // Every completed stream equals the same request run alone.
  for (int i = 0; i < kRequests; ++i) {
    const Job& j = jobs[i];
    if (j.kind != 0) continue;
    json alone = j.body;
    alone.erase("stream");
    alone.erase("stream_options");
    const Reply r = post(server(), "/v1/completions", alone);
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(j.text, r.body["choices"][0]["text"]) << "request " << i << " differs when run alone";
  }
  EXPECT_TRUE(wait_idle(server(), state)) << state.dump();
}

// ---- servers with other flags ------------------------------------------------------------

TEST(HttpFlags, ApiKeyGuardsV1Only) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host", "127.0.0.1", "--port", "0",
                   "--api-key", "sekrit"});
  ASSERT_TRUE(s.wait_healthy());
  const std::string body = json{{"prompt", "A"}, {"max_tokens", 2}}.dump();
  for (const httplib::Headers& h : {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer wrong"}},
                                    httplib::Headers{{"Authorization", "sekrit"}}}) {
    const Reply r = post(s, "/v1/completions", body, h);
    EXPECT_EQ(r.status, 401) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], "invalid_api_key");
  }
  EXPECT_EQ(get(s, "/v1/models").status, 401);
  EXPECT_EQ(post(s, "/v1/completions", body, {{"Authorization", "Bearer sekrit"}}).status, 200);
  EXPECT_EQ(get(s, "/v1/models", {{"Authorization", "Bearer sekrit"}}).status, 200);
  EXPECT_EQ(get(s, "/health").status, 200);  // as vLLM: only /v1 is guarded
  EXPECT_EQ(get(s, "/metrics").status, 200);
  // A CORS preflight passes without the key.
  auto c = s.client();
  const auto pre = c.Options("/v1/chat/completions");
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(s.stop(), 0);
}

// A model whose logits are NaN (what weights that overflow give) over HTTP: greedy and sampled
// completions still answer (id 0, as vLLM's greedy would); a request its constraints cannot
// follow, a beam search and the pooling endpoints fail with a 500 naming the cause, instead of
// a yes/no choice answered "!!!!", a beam search without choices, or vectors of -9999.0.
TEST(HttpFlags, AModelWithNaNLogitsFailsWhatItCannotHonour) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const std::filesystem::path nan = testing::write_nan_norm_model(dir, "tinyllm_http_nan");
  {
    ServerProcess s({"--model", nan.string(), "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "64MiB",
                     "--host", "127.0.0.1", "--port", "0"},
                    {}, /*merge_stderr=*/true);
    ASSERT_TRUE(s.wait_healthy());
    for (const json& free : {json{{"prompt", "A"}, {"max_tokens", 3}, {"temperature", 0}},
                             json{{"prompt", "A"}, {"max_tokens", 3}, {"temperature", 1}, {"top_p", 0.5}}}) {
      const Reply r = post(s, "/v1/completions", free);
      EXPECT_EQ(r.status, 200) << r.raw;
    }
    const json failing[] = {
        {{"prompt", "A"}, {"max_tokens", 3}, {"guided_choice", {"yes", "no"}}},
        {{"prompt", "A"}, {"max_tokens", 3}, {"temperature", 1}, {"allowed_token_ids", {5, 6}}},
        {{"prompt", "A"}, {"max_tokens", 3}, {"use_beam_search", true}, {"n", 2}},
    };
    for (const json& body : failing) {
      const Reply r = post(s, "/v1/completions", body);
      EXPECT_EQ(r.status, 500) << body.dump() << " " << r.raw;
      EXPECT_NE(r.body["error"]["message"].get<std::string>().find(" finite "), std::string::npos) << r.raw;
    }
    // Every draw above came from a NaN row: /metrics counts them (at least the 6 tokens of the
    // two free completions), and the log says so once, at the first.
    const std::string metrics = get(s, "/metrics").raw;
    const std::string key = "tinyllm:nonfinite_logit_rows_total{model_name=\"" + nan.string() + "\"} ";
    const size_t at = metrics.find(key);
    ASSERT_NE(at, std::string::npos) << metrics;
    EXPECT_GE(std::stod(metrics.substr(at + key.size())), 6.0) << metrics.substr(at, 120);
    EXPECT_EQ(s.stop(), 0);
    const std::string warning = "the model's logits have no usable value";
    const size_t first = s.output().find(warning);
    EXPECT_NE(first, std::string::npos) << s.output();
    EXPECT_EQ(s.output().find(warning, first + 1), std::string::npos) << s.output();
  }
  {
    ServerProcess s({"--model", nan.string(), "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "64MiB",
                     "--host", "127.0.0.1", "--port", "0", "--runner", "pooling"});
    ASSERT_TRUE(s.wait_healthy());
    for (const auto& [path, body] : {std::pair<std::string, json>{"/v1/embeddings", {{"input", "A"}}},
                                     {"/v1/score", {{"text_1", "a"}, {"text_2", "b"}}}}) {
      const Reply r = post(s, path, body);
      EXPECT_EQ(r.status, 500) << path << " " << r.raw;
      EXPECT_NE(r.raw.find("not finite (NaN or inf)"), std::string::npos) << r.raw;
    }
    EXPECT_EQ(s.stop(), 0);
  }
  std::filesystem::remove_all(nan);
}

// `tinyllm serve REPO_ID` (as `vllm serve Qwen/...`): the model comes from the hub (one on
// loopback, tests/io/fake_hub.h) and the API names it by its repository id; "root" is the
// snapshot folder in the cache.
TEST(HttpFlags, AHubRepositoryIdIsTheServedName) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  testing::FakeHub hub;
  const std::string commit = "fedcba9876543210fedcba9876543210fedcba98";
  hub.add_repo("tinyllm-test/demo", commit, testing::repo_files_of(dir));
  hub.start();
  const std::string cache = ::testing::TempDir() + "tinyllm_serve_hub_" + std::to_string(::getpid());
  ServerProcess s({"tinyllm-test/demo", "--download-dir", cache, "--device", "cpu", "--threads", kThreads,
                   "--kv-cache-memory", "256MiB", "--host", "127.0.0.1", "--port", "0"},
                  {{"HF_ENDPOINT", hub.endpoint()}, {"HF_TOKEN", ""}});
  ASSERT_TRUE(s.wait_healthy());
  const Reply m = get(s, "/v1/models");
  ASSERT_EQ(m.status, 200) << m.raw;
  ASSERT_EQ(m.body["data"].size(), 1u) << m.raw;
  EXPECT_EQ(m.body["data"][0]["id"], "tinyllm-test/demo");
  EXPECT_EQ(m.body["data"][0]["root"], cache + "/models--tinyllm-test--demo/snapshots/" + commit);
  const Reply r = post(s, "/v1/completions", json{{"model", "tinyllm-test/demo"}, {"prompt", kPrompt}, {"max_tokens", 4}});
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["model"], "tinyllm-test/demo");
  EXPECT_EQ(s.stop(), 0);
  std::error_code ec;
  std::filesystem::remove_all(cache, ec);
}

// --reasoning-parser qwen3: replies carry reasoning_content (null: the demo model writes no
// <think>), content stays the engine's text, streamed and not (the split itself:
// ChatOutput.* in test_chat_output.cpp).
TEST(HttpFlags, ReasoningParserAddsReasoningContent) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                   "127.0.0.1", "--port", "0", "--reasoning-parser", "qwen3"});
  ASSERT_TRUE(s.wait_healthy());
  json body = {{"messages", {{{"role", "user"}, {"content", "Tell me a fortune."}}}}, {"max_tokens", 12},
               {"temperature", 0}};
  const Reply r = post(s, "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& m = r.body["choices"][0]["message"];
  ASSERT_TRUE(m.contains("reasoning_content"));
  EXPECT_TRUE(m["reasoning_content"].is_null());
  EXPECT_FALSE(m["content"].get<std::string>().empty());
  body["stream"] = true;
  const Stream st = stream(s, "/v1/chat/completions", body);
  std::string text;
  for (const json& ch : st.chunks) {
    EXPECT_FALSE(ch["choices"][0]["delta"].contains("reasoning_content"));
    text += ch["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(text, m["content"]);
  EXPECT_EQ(s.stop(), 0);
}

// Under a reasoning parser a response_format applies after the reasoning, as vLLM's does: the
// reply may open <think> (before, the format held from the first token and "<" could not be
// drawn). The demo model never closes it, so its reply is reasoning up to max_tokens; toward
// "{" it answers in the format with no reasoning.
TEST(HttpFlags, ResponseFormatStartsAfterTheReasoning) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                   "127.0.0.1", "--port", "0", "--reasoning-parser", "qwen3"});
  ASSERT_TRUE(s.wait_healthy());
  const Reply ids = post(s, "/tokenize", json{{"prompt", "<{"}, {"add_special_tokens", false}});
  ASSERT_EQ(ids.status, 200) << ids.raw;
  ASSERT_EQ(ids.body["tokens"].size(), 2u) << ids.raw;
  json body = {{"messages", {{{"role", "user"}, {"content", "Tell me a fortune."}}}}, {"max_tokens", 12},
               {"temperature", 0}, {"response_format", {{"type", "json_object"}}},
               {"logit_bias", {{std::to_string(ids.body["tokens"][0].get<int>()), 100}}}};
  const Reply thinking = post(s, "/v1/chat/completions", body);
  ASSERT_EQ(thinking.status, 200) << thinking.raw;
  const json& m = thinking.body["choices"][0]["message"];
  ASSERT_TRUE(m["reasoning_content"].is_string()) << thinking.raw;
  EXPECT_FALSE(m["reasoning_content"].get<std::string>().empty());
  EXPECT_EQ(thinking.body["choices"][0]["finish_reason"], "length");

  body["logit_bias"] = {{std::to_string(ids.body["tokens"][1].get<int>()), 100}};
  body["max_tokens"] = 40;
  const Reply answer = post(s, "/v1/chat/completions", body);
  ASSERT_EQ(answer.status, 200) << answer.raw;
  const json& a = answer.body["choices"][0]["message"];
  EXPECT_TRUE(a["reasoning_content"].is_null()) << answer.raw;
  EXPECT_EQ(a["content"].get<std::string>()[0], '{') << answer.raw;
  EXPECT_EQ(s.stop(), 0);
}

// DeepSeek-R1's parser reads text as reasoning until </think>; the demo model never writes it,
// so its whole reply is one reasoning item: the chat completion's reasoning_content.
TEST(HttpFlags, ResponsesReasoningItems) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                   "127.0.0.1", "--port", "0", "--reasoning-parser", "deepseek_r1"});
  ASSERT_TRUE(s.wait_healthy());
  const Reply chat = post(s, "/v1/chat/completions",
                          json{{"messages", {{{"role", "user"}, {"content", "Tell me a fortune."}}}},
                               {"max_tokens", 12}, {"temperature", 0}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  const json& message = chat.body["choices"][0]["message"];
  ASSERT_TRUE(message["reasoning_content"].is_string()) << chat.raw;
  const json body = {{"input", "Tell me a fortune."}, {"max_output_tokens", 12}, {"temperature", 0}};
  const Reply r = post(s, "/v1/responses", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  const std::string status = chat.body["choices"][0]["finish_reason"] == "length" ? "incomplete" : "completed";
  EXPECT_EQ(r.body["status"], status);
  ASSERT_EQ(r.body["output"].size(), 1u) << r.raw;
  const json& item = r.body["output"][0];
  EXPECT_EQ(item["type"], "reasoning");
  EXPECT_EQ(item["id"].get<std::string>().rfind("rs_", 0), 0u);
  EXPECT_EQ(item["status"], status);
  EXPECT_EQ(item["content"][0]["type"], "reasoning_text");
  EXPECT_EQ(item["content"][0]["text"], message["reasoning_content"]);
  const int reasoning_tokens = r.body["usage"]["output_tokens_details"]["reasoning_tokens"];
  EXPECT_GT(reasoning_tokens, 0);
  EXPECT_LE(reasoning_tokens, r.body["usage"]["output_tokens"].get<int>());

  const auto events = response_events(s, body);
  ASSERT_FALSE(events.empty());
  const json& last = events.back().data["response"];
  EXPECT_EQ(last["output"], json::array({last["output"][0]}));
  EXPECT_EQ(item_deltas(events)[last["output"][0]["id"]], message["reasoning_content"]);
  for (const auto& e : events) EXPECT_NE(e.type, "response.output_text.delta");
  EXPECT_EQ(s.stop(), 0);
}

// --responses-store-size bounds the stored responses: the least recently used goes first.
TEST(HttpFlags, ResponsesStoreSizeBoundsWhatIsKept) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                   "127.0.0.1", "--port", "0", "--responses-store-size", "1"});
  ASSERT_TRUE(s.wait_healthy());
  const json body = {{"input", "Tell me a fortune."}, {"max_output_tokens", 2}};
  const Reply a = post(s, "/v1/responses", body);
  const Reply b = post(s, "/v1/responses", body);
  ASSERT_EQ(a.status, 200) << a.raw;
  ASSERT_EQ(b.status, 200) << b.raw;
  EXPECT_EQ(get(s, "/v1/responses/" + a.body["id"].get<std::string>()).status, 404);
  EXPECT_EQ(get(s, "/v1/responses/" + b.body["id"].get<std::string>()).status, 200);
  EXPECT_EQ(s.stop(), 0);
}

TEST(HttpFlags, FullQueueIs503) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  // Every step takes at least 20 ms, so the running request (1500 tokens: 30 s) is still
  // running when the third arrives, however fast the machine (CI once finished it first).
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host", "127.0.0.1", "--port", "0",
                   "--max-num-seqs", "1", "--max-queue", "1", "--enable-debug-endpoints"},
                  {{"TINYLLM_DEBUG_STEP_PAUSE_S", "0.02"}});
  ASSERT_TRUE(s.wait_healthy());
  // More sequences in one request (prompts x n) than the queue holds: refused whole, queue
  // empty or not (it used to be admitted into an empty queue, however large).
  const Reply too_many = post(s, "/v1/completions", json{{"prompt", {"A", "B"}}, {"max_tokens", 1}});
  EXPECT_EQ(too_many.status, 400) << too_many.raw;
  EXPECT_NE(too_many.raw.find("asks for 2 sequences"), std::string::npos) << too_many.raw;
  EXPECT_EQ(post(s, "/v1/completions", json{{"prompt", "A"}, {"max_tokens", 1}, {"n", 2}}).status, 400);
  // One request runs (and streams until we hang up), one waits, the next is refused.
  std::atomic<bool> first_chunk{false}, hang_up{false};
  std::thread running([&] {
    SseClient c(s.url());
    c.post("/v1/completions",
           json{{"prompt", "A"}, {"max_tokens", 1500}, {"ignore_eos", true}, {"stream", true}}.dump(),
           [&](std::string_view) {
             first_chunk = true;
             return !hang_up.load();
           });
  });
  while (!first_chunk) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Reply waiting;
  std::thread waiter([&] { waiting = post(s, "/v1/completions", json{{"prompt", "B"}, {"max_tokens", 3}}); });
  const double deadline = now_seconds() + 10;
  while (engine_state(s)["num_waiting"] != 1 && now_seconds() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const json state = engine_state(s);
  EXPECT_EQ(state["num_running"], 1) << state.dump();
  EXPECT_EQ(state["num_waiting"], 1) << state.dump();
  const Reply refused = post(s, "/v1/completions", json{{"prompt", "C"}, {"max_tokens", 3}});
  EXPECT_EQ(refused.status, 503) << refused.raw;
  EXPECT_EQ(refused.body.value("/error/type"_json_pointer, ""), "server_error") << refused.raw;
  hang_up = true;
  running.join();
  waiter.join();
  EXPECT_EQ(waiting.status, 200) << waiting.raw;
  EXPECT_EQ(s.stop(), 0);
}

// --tool-call-parser llama3_json (vLLM's, for Llama 3.1 / 3.2): a forced call is the call
// object itself, {"name": ..., "parameters": {...}}, and comes back as tool_calls, whole and
// streamed (the same call); a reply that is not a call object stays content; strict tools
// under tool_choice "auto" are refused (their form waits for Hermes' tag).
TEST(HttpFlags, Llama3JsonToolCalls) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                   "127.0.0.1", "--port", "0", "--tool-call-parser", "llama3_json"});
  ASSERT_TRUE(s.wait_healthy());
  const json weather = json::parse(R"({"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}},
      "required": ["city"]})");
  const json tools = json::array({{{"type", "function"}, {"function", {{"name", "get_weather"}, {"parameters", weather}}}}});
  // The tiny model pads JSON with whitespace: a nudge towards "}" and a few seeds, as in
  // Http.ForcedToolCalls, so that some calls close within max_tokens.
  const Reply brace = post(s, "/tokenize", json{{"prompt", "}"}, {"add_special_tokens", false}});
  ASSERT_EQ(brace.status, 200) << brace.raw;
  json body = {{"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}},
               {"tools", tools},
               {"tool_choice", "required"},
               {"max_tokens", 150},
               {"logit_bias", {{std::to_string(brace.body["tokens"][0].get<int>()), 4}}}};
  int closed = 0;
  for (int seed = 0; seed < 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    body["seed"] = seed;
    body.erase("stream");
    const Reply r = post(s, "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    const json& c = r.body["choices"][0];
    if (c["finish_reason"] != "tool_calls") continue;  // cut by max_tokens inside the call
    ++closed;
    ASSERT_EQ(c["message"]["tool_calls"].size(), 1u) << r.raw;
    EXPECT_TRUE(c["message"]["content"].is_null()) << r.raw;
    const json& call = c["message"]["tool_calls"][0]["function"];
    EXPECT_EQ(call["name"], "get_weather");
    const json args = json::parse(call["arguments"].get<std::string>());
    EXPECT_TRUE(args.is_object() && args.contains("city")) << args.dump();
    body["stream"] = true;
    const Stream st = stream(s, "/v1/chat/completions", body);
    ASSERT_EQ(st.status, 200);
    std::string name, arguments, content;
    for (const json& ch : st.chunks) {
      const json& delta = ch["choices"][0]["delta"];
      if (delta.contains("content") && delta["content"].is_string()) content += delta["content"].get<std::string>();
      if (!delta.contains("tool_calls")) continue;
      for (const json& d : delta["tool_calls"]) {
        if (d["function"].contains("name")) name = d["function"]["name"];
        arguments += d["function"]["arguments"].get<std::string>();
      }
    }
    EXPECT_EQ(content, "");
    EXPECT_EQ(name, "get_weather");
    EXPECT_EQ(json::parse(arguments), args) << arguments;
    EXPECT_EQ(st.chunks.back()["choices"][0]["finish_reason"], "tool_calls");
  }
  EXPECT_GT(closed, 0) << "no forced call was closed within max_tokens";
  // /v1/responses: the same form becomes a function_call item, whole and streamed.
  const json rtools = json::array({{{"type", "function"}, {"name", "get_weather"}, {"parameters", weather}}});
  int completed = 0;
  for (int seed = 0; seed < 4; ++seed) {
    SCOPED_TRACE("responses, seed " + std::to_string(seed));
    const json rbody = {{"input", {{{"role", "user"}, {"content", "Weather in Paris?"}}}},
                        {"tools", rtools},
                        {"tool_choice", {{"type", "function"}, {"name", "get_weather"}}},
                        {"max_output_tokens", 150},
                        {"seed", seed},
                        {"logit_bias", body["logit_bias"]}};
    const Reply r = post(s, "/v1/responses", rbody);
    ASSERT_EQ(r.status, 200) << r.raw;
    if (r.body["status"] != "completed") continue;  // cut inside the call
    ++completed;
    ASSERT_EQ(r.body["output"].size(), 1u) << r.raw;
    const json& item = r.body["output"][0];
    EXPECT_EQ(item["type"], "function_call") << r.raw;
    EXPECT_EQ(item["name"], "get_weather");
    const json args = json::parse(item["arguments"].get<std::string>());
    EXPECT_TRUE(args.is_object() && args.contains("city")) << args.dump();
    const auto events = response_events(s, rbody);
    const json& last = events.back().data["response"];
    ASSERT_EQ(last["output"].size(), 1u);
    EXPECT_EQ(last["output"][0]["type"], "function_call");
    EXPECT_EQ(json::parse(last["output"][0]["arguments"].get<std::string>()), args);
  }
  EXPECT_GT(completed, 0) << "no forced responses call was closed within max_output_tokens";
  // Tools offered, the model free: its prose stays content.
  body.erase("stream");
  body.erase("logit_bias");
  body["tool_choice"] = "auto";
  body["max_tokens"] = 8;
  const Reply free = post(s, "/v1/chat/completions", body);
  ASSERT_EQ(free.status, 200) << free.raw;
  const json& m = free.body["choices"][0]["message"];
  if (!m.contains("tool_calls") || m["tool_calls"].empty()) {
    EXPECT_TRUE(m["content"].is_string()) << free.raw;
  }
  // A strict tool under "auto" has no form with this parser.
  json strict_tools = tools;
  strict_tools[0]["function"]["strict"] = true;
  body["tools"] = strict_tools;
  const Reply refused = post(s, "/v1/chat/completions", body);
  EXPECT_EQ(refused.status, 400) << refused.raw;
  EXPECT_EQ(refused.body["error"]["param"], "tools") << refused.raw;
  EXPECT_EQ(s.stop(), 0);
}

// A vLLM command line: the model as a positional argument, the tool-call flags (hermes),
// --trust-remote-code, --tensor-parallel-size 2 (two CPU ranks), --chat-template FILE and
// --generation-config vllm. The server renders chats with that template (/tokenize, and a chat completion equals
// the completion of the rendered text), and a request without sampling fields samples as one
// with vLLM's defaults (temperature 1, top-p 1, no top-k), not the model's generation_config.
TEST(HttpFlags, AVllmCommandLineServes) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const std::string tpl_path = ::testing::TempDir() + "tinyllm_http_tpl.jinja";
  std::ofstream(tpl_path) << "{% for m in messages %}Q: {{ m.content }}\nA:{% endfor %}";
  ServerProcess s({dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host", "127.0.0.1",
                   "--port", "0", "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--trust-remote-code",
                   "--tensor-parallel-size", "2", "--chat-template", tpl_path, "--generation-config", "vllm"});
  ASSERT_TRUE(s.wait_healthy());
  const json messages = json::array({{{"role", "user"}, {"content", "Tell me a fortune."}}});
  const Reply tok = post(s, "/tokenize", json{{"messages", messages}, {"add_generation_prompt", true}});
  ASSERT_EQ(tok.status, 200) << tok.raw;
  const Reply plain = post(s, "/tokenize", json{{"prompt", "Q: Tell me a fortune.\nA:"}, {"add_special_tokens", false}});
  EXPECT_EQ(tok.body["tokens"], plain.body["tokens"]) << tok.raw << "\n" << plain.raw;
  const Reply chat = post(s, "/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 10}, {"temperature", 0}});
  const Reply completion = post(s, "/v1/completions", json{{"prompt", "Q: Tell me a fortune.\nA:"}, {"max_tokens", 10},
                                                           {"temperature", 0}, {"add_special_tokens", false}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  ASSERT_EQ(completion.status, 200) << completion.raw;
  EXPECT_EQ(chat.body["choices"][0]["message"]["content"], completion.body["choices"][0]["text"]);
  const json seeded = {{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"seed", 11}};
  json vllm_defaults = seeded;
  vllm_defaults.update({{"temperature", 1.0}, {"top_p", 1.0}, {"top_k", -1}, {"min_p", 0.0}});
  const Reply a = post(s, "/v1/completions", seeded), b = post(s, "/v1/completions", vllm_defaults);
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body["choices"][0]["text"], b.body["choices"][0]["text"]);
  EXPECT_EQ(s.stop(), 0);
  std::remove(tpl_path.c_str());
}

// --enable-log-requests: a line per request with its prompt (cut to --max-log-len characters
// and ids) and sampling settings; without the flag, none.
TEST(HttpFlags, RequestsAreLoggedWhenAsked) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const std::vector<std::string> base = {"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory",
                                         "64MiB", "--host", "127.0.0.1", "--port", "0"};
  std::vector<std::string> args = base;
  for (const char* a : {"--enable-log-requests", "--max-log-len", "8"}) args.push_back(a);
  ServerProcess logged(args, {}, /*merge_stderr=*/true);
  ASSERT_TRUE(logged.wait_healthy());
  const Reply r = post(logged, "/v1/completions",
                       json{{"prompt", "And the LORD said unto Moses, and Aaron"}, {"max_tokens", 3}, {"seed", 5}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const std::string id = r.body["id"];
  EXPECT_EQ(logged.stop(), 0);
  const std::string& out = logged.output();
  const size_t at = out.find("Received request " + id + ": prompt: \"");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string line = out.substr(at, out.find('\n', at) - at);
  EXPECT_NE(line.find("max_tokens=3"), std::string::npos) << line;
  EXPECT_NE(line.find("seed=5"), std::string::npos) << line;
  EXPECT_NE(line.find(", ...]"), std::string::npos) << line;  // more than 8 prompt ids
  const size_t quote = line.find("prompt: \"") + 9;
  EXPECT_LE(line.find('"', quote) - quote, 8u) << line;  // at most 8 characters of text

  ServerProcess quiet(base, {}, /*merge_stderr=*/true);
  ASSERT_TRUE(quiet.wait_healthy());
  ASSERT_EQ(post(quiet, "/v1/completions", json{{"prompt", "A"}, {"max_tokens", 2}}).status, 200);
  EXPECT_EQ(quiet.stop(), 0);
  EXPECT_EQ(quiet.output().find("Received request"), std::string::npos) << quiet.output();
}

// A second server on a port in use exits with the bind error on stderr, before it prints the
// "listening" line (httplib's default SO_REUSEPORT let it bind too, and the kernel split the
// connections between the two).
TEST(HttpFlags, APortInUseIsRefused) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const std::vector<std::string> base = {"--model", dir, "--device", "cpu", "--threads", kThreads,
                                         "--kv-cache-memory", "64MiB", "--host", "127.0.0.1", "--port"};
  std::vector<std::string> args = base;
  args.push_back("0");
  ServerProcess first(args);
  ASSERT_TRUE(first.wait_healthy());
  args = base;
  args.push_back(std::to_string(first.port()));
  EXPECT_THROW(ServerProcess second(args), std::runtime_error) << "a second server listens on port " << first.port();
  EXPECT_EQ(get(first, "/health").status, 200);
  EXPECT_EQ(first.stop(), 0);
}

TEST(HttpFlags, HealthIs503WhileLoading) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host", "127.0.0.1", "--port", "0"},
                  {{"TINYLLM_DEBUG_LOAD_DELAY_S", "2"}});
  const Reply h = get(s, "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body["error"]["code"], "model_loading");
  EXPECT_EQ(post(s, "/v1/completions", json{{"prompt", "A"}}).status, 503);
  EXPECT_EQ(get(s, "/metrics").status, 200);
  EXPECT_TRUE(s.wait_healthy());
  EXPECT_EQ(post(s, "/v1/completions", json{{"prompt", "A"}, {"max_tokens", 2}}).status, 200);
  EXPECT_EQ(s.stop(), 0);
}

// Connections held open past --http-threads (idle keep-alive clients, slow senders, streams)
// do not starve /health: with 2 kept threads and 6 clients that sent half a request head,
// /health answers while all 6 are still open (with a fixed pool it waited for httplib's 5 s
// read timeout to close them, two at a time). Then the 6 finish their requests.
TEST(HttpFlags, HealthAnswersWithEveryKeptThreadHeld) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "64MiB", "--host",
                   "127.0.0.1", "--port", "0", "--http-threads", "2"});
  ASSERT_TRUE(s.wait_healthy());
  std::vector<int> held;
  for (int i = 0; i < 6; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(s.port()));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string half = "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    ASSERT_EQ(send(fd, half.data(), half.size(), 0), static_cast<ssize_t>(half.size()));
    held.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // accepted, each on a thread
  const Reply h = to_reply(s.client(30).Get("/health"));
  EXPECT_EQ(h.status, 200);
  char c = 0;
  for (int fd : held) {
    errno = 0;
    EXPECT_EQ(recv(fd, &c, 1, MSG_DONTWAIT), -1) << "a held connection was answered or closed before /health";
    EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
  }
  for (int fd : held) {
    ASSERT_EQ(send(fd, "Connection: close\r\n\r\n", 23, 0), 23);
    std::string got;
    char buf[1024];
    for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) got.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
    EXPECT_NE(got.find("\"version\""), std::string::npos) << got;
    close(fd);
  }
  EXPECT_EQ(s.stop(), 0);
}

// tinyllm bench-serve against the real server: every request completes with exactly the
// lengths it asked for (ids in, ignore_eos out), the server counts the same tokens in
// /metrics, and the result file holds the table's numbers. Bad flags fail before any request.
TEST(HttpFlags, BenchServeDrivesTheServer) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "64MiB", "--host",
                   "127.0.0.1", "--port", "0"});
  ASSERT_TRUE(s.wait_healthy());
  const std::string result = ::testing::TempDir() + "tllm_bench_serve_" + std::to_string(getpid()) + ".json";
  auto bench = [&](const std::string& flags, std::string& out) {
    const std::string cmd = std::string(TLLM_CLI_BINARY) + " bench-serve --port " + std::to_string(s.port()) + " " +
                            flags + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    for (size_t n; p && (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
    const int status = p ? pclose(p) : -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::string out;
  ASSERT_EQ(bench("--num-prompts 7 --random-input-len 9 --random-output-len 5 --max-concurrency 3 --seed 4 "
                  "--result-file " + result, out), 0) << out;
  EXPECT_NE(out.find("Successful requests:                    7"), std::string::npos) << out;
  const json r = json::parse(std::ifstream(result));
  EXPECT_EQ(r["completed"], 7);
  EXPECT_EQ(r["total_input_tokens"], 63);
  EXPECT_EQ(r["total_output_tokens"], 35);
  EXPECT_EQ(r["model"], dir);
  EXPECT_GT(r["duration"].get<double>(), 0.0);
  EXPECT_GT(r["mean_ttft_ms"].get<double>(), 0.0);
  EXPECT_LE(r["median_ttft_ms"].get<double>(), r["p99_ttft_ms"].get<double>());
  const std::string metrics = get(s, "/metrics").raw;
  EXPECT_NE(metrics.find("vllm:prompt_tokens_total{model_name=\"" + dir + "\"} 63"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("vllm:generation_tokens_total{model_name=\"" + dir + "\"} 35"), std::string::npos) << metrics;
  std::remove(result.c_str());
  for (const auto& [flags, message] : std::vector<std::pair<std::string, std::string>>{
           {"--temperature nan", "--temperature must be a finite number >= 0"},
           {"--num-prompts 0", "--num-prompts must be at least 1"},
           {"--random-range-ratio 1", "--random-range-ratio must be in [0, 1)"}}) {
    out.clear();
    EXPECT_EQ(bench(flags, out), 1) << flags << "\n" << out;
    EXPECT_NE(out.find("error: " + message), std::string::npos) << flags << "\n" << out;
  }
  EXPECT_NE(get(s, "/metrics").raw.find("generation_tokens_total{model_name=\"" + dir + "\"} 35"), std::string::npos);
  EXPECT_EQ(s.stop(), 0);
}

// --speculative-model: the server drafts with the demo model's draft and serves what the
// plain engine generates (greedy and seeded, streamed and not); /metrics counts the drafts.
TEST(HttpFlags, SpeculativeDecodingServesThePlainText) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const std::string draft = testing::tiny_draft_dir();
  if (draft.empty()) GTEST_SKIP() << "tiny-qwen2-demo-draft not found";
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                   "127.0.0.1", "--port", "0", "--speculative-config",
                   json{{"model", draft}, {"num_speculative_tokens", 3}}.dump()});
  ASSERT_TRUE(s.wait_healthy());
  EngineConfig c;
  c.model_dir = dir;
  c.threads = 2;
  c.kv_cache_memory = 256u << 20;
  LLMEngine plain(c);
  const std::vector<int32_t> prompt = plain.tokenizer()->encode(kPrompt, true);
  for (const float temperature : {0.0f, 0.8f}) {
    SamplingParams p;
    p.temperature = temperature;
    p.seed = 42;
    p.top_p = 0.9f;
    p.top_k = 30;
    p.max_tokens = 40;
    p.ignore_eos = true;
    const auto want = plain.generate({prompt}, {p})[0];
    json body = {{"prompt", kPrompt}, {"max_tokens", 40}, {"temperature", temperature}, {"top_p", 0.9},
                 {"top_k", 30},       {"seed", 42},        {"ignore_eos", true}};
    const Reply r = post(s, "/v1/completions", body);
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["choices"][0]["text"], want.text) << temperature;
    EXPECT_EQ(r.body["usage"]["completion_tokens"], 40);
    body["stream"] = true;
    const Stream st = stream(s, "/v1/completions", body);
    std::string text;
    for (const json& ch : st.chunks) text += ch["choices"][0]["text"].get<std::string>();
    EXPECT_EQ(text, want.text) << temperature;
  }
  const std::string m = get(s, "/metrics").raw;
  const auto value = [&](const std::string& name) {
    std::smatch g;
    const bool found = std::regex_search(m, g, std::regex(name + "\\{[^}]*\\} ([0-9.e+]+)"));
    return found ? std::stod(g[1]) : -1.0;
  };
  const double drafts = value("vllm:spec_decode_num_drafts_total");
  const double tokens = value("vllm:spec_decode_num_draft_tokens_total");
  const double accepted = value("vllm:spec_decode_num_accepted_tokens_total");
  EXPECT_GT(drafts, 0) << m;
  EXPECT_LE(tokens, 3 * drafts);
  EXPECT_GT(accepted, 0);
  EXPECT_LE(accepted, tokens);
  EXPECT_EQ(s.stop(), 0);
}

// --runner pooling: /v1/embeddings answers with the engine's vectors (text and token-id
// inputs, one or several), cut to `dimensions` and renormalised, as floats or base64 of
// little-endian f32; the generation routes refuse, as /v1/embeddings does on a generation server.
TEST(HttpFlags, EmbeddingsServeThePoolingModel) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  ServerProcess s({"--model", dir, "--device", "cpu", "--threads", kThreads, "--kv-cache-memory", "256MiB", "--host",
                   "127.0.0.1", "--port", "0", "--runner", "pooling", "--served-model-name", "emb"});
  ASSERT_TRUE(s.wait_healthy());
  EngineConfig c;
  c.model_dir = dir;
  c.threads = 2;
  c.kv_cache_memory = 256u << 20;
  c.runner = "pooling";
  LLMEngine ref(c);
  const Tokenizer& tok = *ref.tokenizer();
  const std::vector<std::string> texts = {"In the beginning God created the heaven and the earth.", "A computer"};
  const std::vector<int32_t> ids = {11, 22, 33, 44};
  auto want = ref.embed({tok.encode(texts[0], true), tok.encode(texts[1], true), ids});
  const Reply r = post(s, "/v1/embeddings", json{{"model", "emb"}, {"input", texts}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "list");
  EXPECT_EQ(r.body["model"], "emb");
  ASSERT_EQ(r.body["data"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const json& d = r.body["data"][i];
    EXPECT_EQ(d["index"], i);
    EXPECT_EQ(d["object"], "embedding");
    const auto v = d["embedding"].get<std::vector<float>>();
    ASSERT_EQ(v.size(), want[i].size());
    for (size_t k = 0; k < v.size(); ++k) EXPECT_FLOAT_EQ(v[k], want[i][k]) << i << ", " << k;
  }
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], tok.encode(texts[0], true).size() + tok.encode(texts[1], true).size());
  EXPECT_EQ(r.body["usage"]["total_tokens"], r.body["usage"]["prompt_tokens"]);

  // Token ids, 16 dimensions (renormalised), base64.
  const Reply b = post(s, "/v1/embeddings", json{{"input", ids}, {"dimensions", 16}, {"encoding_format", "base64"}});
  ASSERT_EQ(b.status, 200) << b.raw;
  const std::string b64 = b.body["data"][0]["embedding"];
  std::string bytes;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i + 3 < b64.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char ch = b64[i + k];
      v = v << 6 | (ch == '=' ? (++pad, 0u) : static_cast<uint32_t>(alphabet.find(ch)));
    }
    for (int k = 0; k < 3 - pad; ++k) bytes += static_cast<char>(v >> (16 - 8 * k) & 0xff);
  }
  ASSERT_EQ(bytes.size(), 16u * 4);
  double n = 0;
  for (int k = 0; k < 16; ++k) n += static_cast<double>(want[2][k]) * want[2][k];
  for (int k = 0; k < 16; ++k) {
    float x;
    std::memcpy(&x, bytes.data() + 4 * k, 4);
    EXPECT_NEAR(x, want[2][k] / std::sqrt(n), 1e-6) << k;
  }

  // vLLM's normalize: false gives the pooled vector as it is (the engine with the model's
  // normalisation off), cut to `dimensions` without renormalising; true the normalised one.
  EngineConfig raw_config = c;
  raw_config.kv_cache_memory = 32u << 20;
  raw_config.pooling_normalize = false;
  const auto raw = LLMEngine(raw_config).embed({ids});
  double raw_norm = 0;
  for (float x : raw[0]) raw_norm += static_cast<double>(x) * x;
  EXPECT_GT(std::abs(std::sqrt(raw_norm) - 1.0), 0.1);  // the two are told apart
  for (const json& extra : {json{{"normalize", false}}, json{{"normalize", false}, {"dimensions", 16}},
                            json{{"normalize", true}}}) {
    SCOPED_TRACE(extra.dump());
    json body = {{"input", ids}};
    body.update(extra);
    const Reply e = post(s, "/v1/embeddings", body);
    ASSERT_EQ(e.status, 200) << e.raw;
    const auto v = e.body["data"][0]["embedding"].get<std::vector<float>>();
    const std::vector<float>& ref_v = extra["normalize"] ? want[2] : raw[0];
    ASSERT_EQ(v.size(), extra.contains("dimensions") ? 16u : ref_v.size());
    for (size_t k = 0; k < v.size(); ++k)  // as above: a batch of one, where the reference ran three
      EXPECT_NEAR(v[k], ref_v[k], 1e-6 * std::max(1.0f, std::abs(ref_v[k]))) << k;
  }

  const auto error = [&](const std::string& path, const json& body) {
    const Reply e = post(s, path, body);
    EXPECT_EQ(e.status, 400) << e.raw;
    return e.body["error"]["message"].get<std::string>();
  };
  EXPECT_NE(error("/v1/embeddings", json{{"input", "x"}, {"normalize", "yes"}}).find("'normalize'"), std::string::npos);
  EXPECT_NE(error("/v1/embeddings", json{{"input", "x"}, {"dimensions", 257}}).find("exceeds the model's embedding size of 256"),
            std::string::npos);
  EXPECT_NE(error("/v1/embeddings", json{{"input", json::array()}}).find("'input' must not be empty"), std::string::npos);
  EXPECT_NE(error("/v1/embeddings", json{{"input", ""}}).find("empty strings"), std::string::npos);
  EXPECT_NE(error("/v1/embeddings", json{{"input", "x"}, {"encoding_format", "int8"}}).find("encoding_format"),
            std::string::npos);
  EXPECT_NE(error("/v1/embeddings", json{{"input", {1, 99999}}}).find("99999"), std::string::npos);
  EXPECT_NE(error("/v1/completions", json{{"prompt", "x"}}).find("use /v1/embeddings"), std::string::npos);
  EXPECT_NE(error("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "x"}}}}}).find("use /v1/embeddings"),
            std::string::npos);

  // vLLM's score API and the rerank API: cosine similarities of the engine's own vectors.
  const auto cos = [](const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0, na = 0, nb = 0;
    for (size_t k = 0; k < a.size(); ++k) d += double(a[k]) * b[k], na += double(a[k]) * a[k], nb += double(b[k]) * b[k];
    return d / std::sqrt(na * nb);
  };
  const std::vector<std::string> docs = {"Knead the dough.", "In the beginning God created the heaven and the earth.",
                                         "A computer", "Ships pass."};
  std::vector<std::vector<int32_t>> doc_ids;
  for (const std::string& d : docs) doc_ids.push_back(tok.encode(d, true));
  const auto dv = ref.embed(doc_ids);
  for (const char* path : {"/score", "/v1/score"}) {
    const Reply sc = post(s, path, json{{"model", "emb"}, {"text_1", texts[0]}, {"text_2", docs}});
    ASSERT_EQ(sc.status, 200) << sc.raw;
    ASSERT_EQ(sc.body["data"].size(), docs.size());
    for (size_t i = 0; i < docs.size(); ++i) {
      EXPECT_EQ(sc.body["data"][i]["index"], i);
      EXPECT_EQ(sc.body["data"][i]["object"], "score");
      EXPECT_NEAR(sc.body["data"][i]["score"].get<double>(), cos(want[0], dv[i]), 1e-6) << i;
    }
  }
  const Reply pairs = post(s, "/v1/score", json{{"text_1", {docs[0], docs[1]}}, {"text_2", {docs[2], docs[1]}}});
  ASSERT_EQ(pairs.status, 200) << pairs.raw;
  EXPECT_NEAR(pairs.body["data"][0]["score"].get<double>(), cos(dv[0], dv[2]), 1e-6);
  EXPECT_NEAR(pairs.body["data"][1]["score"].get<double>(), 1.0, 1e-6);
  for (const char* path : {"/rerank", "/v1/rerank", "/v2/rerank"}) {
    const Reply rr = post(s, path, json{{"model", "emb"}, {"query", texts[0]}, {"documents", docs}, {"top_n", 3}});
    ASSERT_EQ(rr.status, 200) << rr.raw;
    std::vector<size_t> order = {0, 1, 2, 3};
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cos(want[0], dv[a]) > cos(want[0], dv[b]); });
    ASSERT_EQ(rr.body["results"].size(), 3u);
    EXPECT_EQ(rr.body["results"][0]["index"], 1);  // the query's own text
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(rr.body["results"][k]["index"], order[k]);
      EXPECT_EQ(rr.body["results"][k]["document"]["text"], docs[order[k]]);
      EXPECT_NEAR(rr.body["results"][k]["relevance_score"].get<double>(), cos(want[0], dv[order[k]]), 1e-6);
    }
  }
  EXPECT_NE(error("/v1/score", json{{"text_1", {"a", "b"}}, {"text_2", {"c"}}}).find("pair them one to one"),
            std::string::npos);
  EXPECT_NE(error("/v1/score", json{{"text_1", "a"}}).find("'text_2' is required"), std::string::npos);
  EXPECT_NE(error("/v1/rerank", json{{"query", "a"}, {"documents", json::array()}}).find("non-empty list"),
            std::string::npos);
  EXPECT_NE(error("/v1/rerank", json{{"query", "a"}, {"documents", {"b"}}, {"top_n", 0}}).find("'top_n'"),
            std::string::npos);
  EXPECT_EQ(s.stop(), 0);
}

}  // namespace
}  // namespace tllm
