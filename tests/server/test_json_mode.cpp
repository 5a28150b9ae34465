// Structured output on the shipped tiny model: JSON mode (SamplingParams::output_format = one
// object) and a forced tool call, checked with nlohmann::json
// as the reference: every output, token by token, is a prefix of a JSON object (the parser fails
// only at the end of input), every output that stopped is one whole object, and the draw is the
// same with async scheduling on and off. The token filter against a direct count.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "../engine/filter_check.h"
#include "../engine/json_oracle.h"
#include "engine/engine.h"
#include "engine/output_format.h"
#include "engine/json_schema.h"
#include "test_util.h"
#include "tokenizer/token_bytes.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

using testing::json_object_prefix;

EngineConfig config(const std::string& dir, const char* async) {
  EngineConfig c;
  c.model_dir = dir;
  c.device = "cpu";
  c.threads = 2;
  c.kv_cache_memory = 64u << 20;
  c.async_scheduling = async;
  return c;
}

TEST(JsonMode, OutputsAreJsonObjects) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  LLMEngine sync(config(dir, "off")), async(config(dir, "on"));
  const Tokenizer& tok = *sync.tokenizer();
  const std::vector<int32_t> prompt = tok.encode("Reply in JSON. The answer is", true);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<SamplingParams> params;
  for (int i = 0; i < 12; ++i) {
    SamplingParams p;
    p.output_format = {OutputPiece::object()};
    p.temperature = i % 3 == 0 ? 0.0f : 1.0f;
    p.seed = 100 + i;
    p.max_tokens = 160;
    if (i % 2) p.logit_bias = {{*tok.piece_to_id("}"), 4.0f}};  // closes sooner: some finish by eos
    prompts.push_back(prompt);
    params.push_back(p);
  }
  const auto out = sync.generate(prompts, params);
  const auto out_async = async.generate(prompts, params);
  int stopped = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    SCOPED_TRACE(out[i].text);
    EXPECT_EQ(out[i].token_ids, out_async[i].token_ids) << "request " << i;
    std::string text;
    for (int32_t t : out[i].token_ids) {
      if (t == out[i].token_ids.back() && out[i].finish_reason == FinishReason::Stop) break;  // the eos
      text += token_bytes(tok, t);
      ASSERT_TRUE(json_object_prefix(text)) << "after token " << t;
    }
    EXPECT_EQ(text, out[i].text);
    if (out[i].finish_reason == FinishReason::Stop) {
      ++stopped;
      EXPECT_TRUE(nlohmann::json::accept(text)) << text;
    }
  }
  EXPECT_GT(stopped, 0) << "no request closed its object";
}

TEST(JsonMode, TheFilterBansWhatTheRecognizerRefuses) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  LLMEngine engine(config(dir, "off"));
  const Tokenizer& tok = *engine.tokenizer();
  OutputFilter filter(tok, engine.vocab_size());
  // JSON mode, and a schema whose strings have length limits (the plain-string shortcut's room).
  const auto schema = JsonSchema::compile(nlohmann::json::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 5}, "tags": {"type": "array", "items": {"enum": ["red", "green"]}},
      "id": {"type": "integer"}}, "required": ["id"]})"));
  const std::vector<std::pair<std::shared_ptr<const JsonSchema>, std::vector<const char*>>> cases = {
      {JsonSchema::any_object(),
       {"", "{", "{\"ke", "{\"k\": ", "{\"k\": 12", "{\"k\": [tr", "{\"k\": \"x\\u00", "{}"}},
      {schema, {"", "{", "{\"", "{\"name\": \"", "{\"name\": \"abc", "{\"name\": \"abcde", "{\"tags\": [\"gr",
                "{\"id\": 1", "{\"id\": 1}"}},
  };
  for (const auto& [s, texts] : cases) {
    const std::vector<OutputPiece> format_pieces = {OutputPiece::value(s)};
    for (const char* so_far : texts) {
      SCOPED_TRACE(so_far);
      JsonPrefix state(s);
      ASSERT_TRUE(state.feed(std::string_view(so_far)));
      FormatPrefix format(&format_pieces);
      ASSERT_TRUE(format.feed(so_far));
      std::vector<int32_t> want;
      for (int32_t id = 0; id < engine.vocab_size(); ++id) {
        JsonPrefix st = state;
        const std::string b = id < tok.vocab_size() && !tok.is_special(id) ? token_bytes(tok, id) : "";
        if (b.empty() || !st.feed(std::string_view(b))) want.push_back(id);
      }
      const TokenSet& next = filter.next(format);
      std::vector<int32_t> banned;
      for (int32_t id = 0; id < engine.vocab_size(); ++id)
        if (!next.contains(id)) banned.push_back(id);
      EXPECT_EQ(banned, want);
      // The shorter list is kept.
      EXPECT_EQ(next.allowed, want.size() * 2 >= static_cast<size_t>(engine.vocab_size()));
      // Something may follow an open object; nothing a closed one (the engine lets eos through).
      EXPECT_EQ(want.size() == static_cast<size_t>(engine.vocab_size()), state.closed());
    }
  }
}

// Strings with length limits: the filter's answer for every state of a walk equals a direct
// count over the vocabulary, and states whose string is far from its limits share one answer
// (the character count is in the cache's key only within a token's length of a limit).
TEST(JsonMode, LongStringsShareTheFilterStates) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  LLMEngine engine(config(dir, "off"));
  const Tokenizer& tok = *engine.tokenizer();
  OutputFilter filter(tok, engine.vocab_size());
  const auto schema = JsonSchema::compile(nlohmann::json::parse(R"({"type": "array", "minItems": 2, "maxItems": 2,
      "items": {"type": "string", "minLength": 150, "maxLength": 190}})"));
  const std::vector<OutputPiece> fmt = {OutputPiece::value(schema)};
  FormatPrefix state(&fmt);
  std::mt19937 rng(5);
  std::string text;
  size_t steps = 0;
  while (!state.complete() && steps < 600) {
    const TokenSet& next = filter.next(state);
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < engine.vocab_size(); ++id) {
      FormatPrefix s = state;
      const std::string& b = filter.bytes(id);
      const bool ok = !b.empty() && s.feed(b);
      ASSERT_EQ(next.contains(id), ok) << "after " << text << ": token " << id << " " << b;
      if (ok) allowed.push_back(id);
    }
    ASSERT_FALSE(allowed.empty()) << text;
    const int32_t id = allowed[rng() % allowed.size()];
    text += filter.bytes(id);
    ASSERT_TRUE(state.feed(filter.bytes(id)));
    ++steps;
  }
  EXPECT_TRUE(state.complete()) << text;
  const nlohmann::json doc = nlohmann::json::parse(text);
  ASSERT_EQ(doc.size(), 2u);
  for (const auto& s : doc) {
    EXPECT_GE(s.get<std::string>().size(), 150u);
  }
  EXPECT_LT(filter.states_computed() * 3, steps * 2) << filter.states_computed() << " states for " << steps << " tokens";
}

// Free text with a trigger (strict tool calls under tool_choice "auto", here with a trigger the
// demo model writes on its own): after every " the" the output goes on with " king." or
// " queen."; a reply that ends by eos does so in free text; the filter against a direct count.
TEST(JsonMode, FreeTextThenTheFormatAfterItsTrigger) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  LLMEngine engine(config(dir, "off"));
  const Tokenizer& tok = *engine.tokenizer();
  const std::vector<OutputPiece> fmt = {OutputPiece::text_until(" the"), OutputPiece::any_of({" king.", " queen."})};
  const std::vector<int32_t> prompt = tok.encode("And the LORD said unto Moses,", true);
  int triggered = 0;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    SamplingParams p;
    p.output_format = fmt;
    p.seed = seed;
    p.max_tokens = 60;
    const auto out = engine.generate({prompt}, {p})[0];
    SCOPED_TRACE(out.text);
    for (size_t at = out.text.find(" the"); at != std::string::npos; at = out.text.find(" the", at + 1)) {
      const std::string rest = out.text.substr(at + 4);
      if (rest.size() < 7 && (std::string(" king.").rfind(rest, 0) == 0 || std::string(" queen.").rfind(rest, 0) == 0))
        continue;  // cut by max_tokens
      ++triggered;
      EXPECT_TRUE(rest.rfind(" king.", 0) == 0 || rest.rfind(" queen.", 0) == 0) << rest;
    }
    if (out.finish_reason == FinishReason::Stop) {
      FormatPrefix state(&fmt);
      ASSERT_TRUE(state.feed(out.text));
      EXPECT_TRUE(state.complete());
    }
  }
  EXPECT_GT(triggered, 0) << "the model never wrote the trigger";
  testing::expect_filter_is_direct_count(tok, engine.vocab_size(), fmt,
                                         {"", "Moses said", "and th", "and the", "and the qu", "the king. Then"});
}

}  // namespace
}  // namespace tllm
