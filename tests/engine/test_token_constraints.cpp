// vLLM's allowed_token_ids and bad_words (SamplingParams::allowed_token_ids / bad_words_ids),
// on the shipped demo model. References: the same requests through logit_bias (-100 on the
// tokens the constraint removes), and the unconstrained run's own top alternatives.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "../server/test_util.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine_cases.h"
#include "nan_model.h"

namespace tllm {
namespace {

using ::tllm::testing::test_params;

EngineConfig config() {
  EngineConfig c;
  c.model_dir = ::tllm::testing::tiny_model_dir();
  c.device = "cpu";
  c.threads = 2;
  c.num_kv_blocks = 256;
  return c;
}

std::vector<int32_t> bans(const std::vector<std::vector<int32_t>>& words, const std::vector<int32_t>& out,
                          const std::vector<int32_t>& ahead = {}) {
  return bad_word_bans(words, out.data(), out.size(), ahead.data(), ahead.size());
}

TEST(TokenConstraints, BadWordBansFollowTheEndOfTheOutput) {
  const std::vector<std::vector<int32_t>> words = {{5}, {1, 2, 3}, {2, 7}, {2, 3}};
  using V = std::vector<int32_t>;
  EXPECT_EQ(bans(words, {}), (V{5}));                // only the one-token word before any output
  EXPECT_EQ(bans(words, {9, 1, 2}), (V{5, 3, 7}));   // "1 2" and "2" end the output; 3 listed once
  EXPECT_EQ(bans(words, {9, 1}, {2}), (V{5, 3, 7}));  // a draft token counts as output
  EXPECT_EQ(bans(words, {}, {1, 2}), (V{5, 3, 7}));
  EXPECT_EQ(bans(words, {1, 2, 4}), (V{5}));
  EXPECT_EQ(bans(words, {2}), (V{5, 7, 3}));
  EXPECT_EQ(bans({}, {1, 2}), V{});
}

TEST(TokenConstraints, AllowedTokenIdsAreLogitBiasOnEveryOtherToken) {
  LLMEngine engine(config());
  const auto prompts = ::tllm::testing::demo_prompts(engine);
  // The allowed set: the unconstrained greedy output of the first prompt, less its third token,
  // plus a few ids; the constrained run must leave that path at the third token.
  const auto free_run = engine.generate({prompts[0]}, {test_params(12)})[0];
  std::set<int32_t> allowed(free_run.token_ids.begin(), free_run.token_ids.end());
  allowed.erase(free_run.token_ids[2]);
  for (int32_t t : {7, 300, 1000, 2500}) allowed.insert(t);
  ASSERT_FALSE(allowed.count(free_run.token_ids[2]));

  std::vector<SamplingParams> constrained, biased;
  for (float temperature : {0.0f, 0.9f}) {
    SamplingParams a = test_params(16, temperature, 11);
    a.allowed_token_ids.assign(allowed.begin(), allowed.end());
    a.logprobs = 2;
    SamplingParams b = test_params(16, temperature, 11);
    b.logprobs = 2;
    for (int32_t t = 0; t < engine.vocab_size(); ++t)
      if (!allowed.count(t)) b.logit_bias.emplace_back(t, -100.0f);
    constrained.push_back(a);
    biased.push_back(b);
  }
  const std::vector<std::vector<int32_t>> ps = {prompts[0], prompts[0]};
  const auto got = engine.generate(ps, constrained);
  const auto want = engine.generate(ps, biased);
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].token_ids, want[i].token_ids);
    EXPECT_EQ(got[i].text, want[i].text);
    for (int32_t t : got[i].token_ids) EXPECT_TRUE(allowed.count(t)) << t;
  }
  EXPECT_EQ(std::vector<int32_t>(got[0].token_ids.begin(), got[0].token_ids.begin() + 2),
            std::vector<int32_t>(free_run.token_ids.begin(), free_run.token_ids.begin() + 2));
  EXPECT_NE(got[0].token_ids[2], free_run.token_ids[2]);
}

TEST(TokenConstraints, ABadWordMovesGreedyToTheRunnerUpWhereItWouldAppear) {
  LLMEngine engine(config());
  const auto prompts = ::tllm::testing::demo_prompts(engine);
  for (size_t pi = 0; pi < 3; ++pi) {
    SCOPED_TRACE(pi);
    SamplingParams free_params = test_params(12);
    free_params.logprobs = 2;
    const auto free_run = engine.generate({prompts[pi]}, {free_params})[0];
    const std::vector<int32_t>& t = free_run.token_ids;
    // Ban the pair (t3, t4): the output follows the free run through t3, then takes the free
    // run's second choice at step 4 (its first, t4, being banned there).
    SamplingParams p = free_params;
    p.bad_words_ids = {{t[3], t[4]}};
    const auto got = engine.generate({prompts[pi]}, {p})[0];
    ASSERT_GE(got.token_ids.size(), 5u);
    EXPECT_EQ(std::vector<int32_t>(got.token_ids.begin(), got.token_ids.begin() + 4),
              std::vector<int32_t>(t.begin(), t.begin() + 4));
    ASSERT_EQ(free_run.logprobs[4].top[0].first, t[4]);
    EXPECT_EQ(got.token_ids[4], free_run.logprobs[4].top[1].first);
    // The pair never appears in the output.
    for (size_t j = 0; j + 1 < got.token_ids.size(); ++j)
      EXPECT_FALSE(got.token_ids[j] == t[3] && got.token_ids[j + 1] == t[4]) << j;

    // A one-token bad word is gone everywhere: the same as logit_bias -100 on it.
    SamplingParams one = test_params(12);
    one.bad_words_ids = {{t[0]}, {t[2]}};
    SamplingParams bias = test_params(12);
    bias.logit_bias = {{t[0], -100.0f}, {t[2], -100.0f}};
    const auto a = engine.generate({prompts[pi]}, {one})[0];
    const auto b = engine.generate({prompts[pi]}, {bias})[0];
    EXPECT_EQ(a.token_ids, b.token_ids);
    EXPECT_EQ(std::count(a.token_ids.begin(), a.token_ids.end(), t[0]), 0);
  }
}

TEST(TokenConstraints, ImpossibleCombinationsAreRefused) {
  LLMEngine engine(config());
  const auto prompts = ::tllm::testing::demo_prompts(engine);
  const int32_t eos = engine.tokenizer()->eos_token_id().value();
  SamplingParams p = test_params(8);
  p.ignore_eos = false;
  p.min_tokens = 2;
  p.allowed_token_ids = {eos};  // nothing but the end before min_tokens
  EXPECT_THROW(engine.add_request("a", prompts[0], p), InvalidArgument);
  p.allowed_token_ids = {engine.vocab_size()};
  EXPECT_THROW(engine.add_request("b", prompts[0], p), InvalidArgument);
  p.allowed_token_ids = {5};
  p.output_format = {OutputPiece::object()};
  EXPECT_THROW(engine.add_request("c", prompts[0], p), InvalidArgument);
  SamplingParams q = test_params(8);
  q.bad_words_ids = {{}};
  EXPECT_THROW(engine.add_request("d", prompts[0], q), InvalidArgument);
  SamplingParams r = test_params(8);
  r.min_tokens = 2;
  for (int32_t t = 0; t < engine.vocab_size(); ++t) r.stop_token_ids.push_back(t);  // every id ends it
  EXPECT_THROW(engine.add_request("e", prompts[0], r), InvalidArgument);
  r.stop_token_ids.pop_back();  // one id left that does not
  EXPECT_NO_THROW(engine.add_request("f", prompts[0], r));
  engine.abort_request("f");
  while (engine.has_unfinished_requests()) engine.step();
}

// A structured output that is complete and takes nothing more ends at once, min_tokens and
// ignore_eos notwithstanding: min_tokens banned the end ids the choice left, the draw had no
// token to take, and its stand-in id (-1) went into the output (the server then crashed on
// the next request). The ids must be the choice's text, then an end id.
TEST(TokenConstraints, AClosedChoiceEndsBeforeMinTokens) {
  LLMEngine engine(config());
  const auto prompts = ::tllm::testing::demo_prompts(engine);
  const std::set<int32_t> eos = {engine.tokenizer()->eos_token_id().value()};
  for (bool ignore_eos : {false, true}) {
    SamplingParams p = test_params(10);
    p.ignore_eos = ignore_eos;
    p.min_tokens = 5;
    p.output_format = {OutputPiece::any_of({"yes", "no"})};
    const LLMEngine::Completion out = engine.generate({prompts[0]}, {p})[0];
    ASSERT_FALSE(out.token_ids.empty());
    for (int32_t t : out.token_ids) EXPECT_TRUE(t >= 0 && t < engine.vocab_size()) << t;
    std::vector<int32_t> text(out.token_ids.begin(), out.token_ids.end() - 1);
    const std::string s = engine.tokenizer()->decode(text);
    EXPECT_TRUE(s == "yes" || s == "no") << s << " ignore_eos " << ignore_eos;
    EXPECT_TRUE(engine.tokenizer()->eos_token_id() == out.token_ids.back()) << out.token_ids.back();
    EXPECT_EQ(out.finish_reason, FinishReason::Stop);
  }
}

// A model whose logits are NaN everywhere (the demo model with a NaN final norm: what weights
// that overflow give): a request with allowed_token_ids or a structured output ends with an
// error naming the cause, on the synchronous and the pipelined engine, instead of the stand-in
// id 0 that the backends draw when no token has a finite weight, which its constraints refuse
// (it emitted "!!!!" for a choice of "yes" / "no"). An unconstrained request still runs.
TEST(TokenConstraints, LogitsWithoutAFiniteValueEndConstrainedRequestsWithAnError) {
  const std::filesystem::path dir =
      ::tllm::testing::write_nan_norm_model(::tllm::testing::tiny_model_dir(), "tinyllm_nan_model");
  for (const char* async : {"off", "on"}) {
    EngineConfig c = config();
    c.model_dir = dir.string();
    c.async_scheduling = async;
    LLMEngine engine(c);
    SamplingParams allowed = test_params(4, 0.8f, 3), choice = test_params(4, 0.0f), free = test_params(4, 0.8f, 3);
    allowed.allowed_token_ids = {5, 6, 7};
    choice.output_format = {OutputPiece::any_of({"yes", "no"})};
    engine.add_request("allowed", {1, 2, 3}, allowed);
    engine.add_request("choice", {1, 2, 3}, choice);
    engine.add_request("free", {1, 2, 3}, free);
    auto [tokens, last] = ::tllm::testing::run_to_completion(engine);
    for (const char* id : {"allowed", "choice"}) {
      EXPECT_TRUE(last[id].finished) << async << " " << id;
      EXPECT_NE(last[id].error.find("the model's logits have no finite value"), std::string::npos)
          << async << " " << id << ": " << last[id].error;
      EXPECT_TRUE(tokens[id].empty()) << async << " " << id << ": every logit is NaN, so its first draw fails";
    }
    EXPECT_TRUE(last["free"].error.empty()) << async << ": " << last["free"].error;
    EXPECT_EQ(tokens["free"].size(), 4u) << async;
    // Every draw (the free request's 4, the others' failed first) came from a NaN row; the
    // pipelined engine had also launched the failed requests' second draw.
    EXPECT_EQ(engine.stats().nonfinite_logit_rows, std::string(async) == "off" ? 6u : 8u);
  }
  {  // the same prompts on the model itself: no row is counted
    EngineConfig c = config();
    LLMEngine engine(c);
    engine.add_request("free", {1, 2, 3}, test_params(4, 0.8f, 3));
    while (engine.has_unfinished_requests()) engine.step();
    EXPECT_EQ(engine.stats().nonfinite_logit_rows, 0u);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tllm
