// Async scheduling (EngineConfig::async_scheduling, engine.cpp): the next step is launched
// before the host has the sampled tokens of the one before (they are fed to the embedding
// from the draw), outputs come one step() later. Results must be those of the synchronous
// engine on the same device, token for token and bit for bit. Included by
// test_async_scheduling.cpp (CPU: the backend's synchronous default draw, the pipelined code
// path without the overlap) and test_gpu_async_scheduling.cpp (CUDA: deferred draws, the
// ids fed by a kernel), each defining TLLM_ASYNC_DEVICE first.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../server/test_util.h"  // tiny_model_dir: the shipped demo model
#include "engine_cases.h"
#include "engine/engine.h"
#include "kernels/backend.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

// kv_tokens: the cache size in tokens (blocks of 4 on the CPU, 16 on CUDA).
EngineConfig config(const std::string& async, int max_batched = 64, int kv_tokens = 1024) {
  EngineConfig c;
  c.model_dir = ::tllm::testing::tiny_model_dir();
  c.device = TLLM_ASYNC_DEVICE;
  c.threads = 2;
  c.block_size = c.device == "cuda" ? 16 : 4;
  c.max_num_batched_tokens = max_batched;
  c.num_kv_blocks = kv_tokens / c.block_size;
  c.async_scheduling = async;
  return c;
}

#define TLLM_ASYNC_SKIP_WITHOUT_DEVICE()                                                     \
  do {                                                                                       \
    if (std::string(TLLM_ASYNC_DEVICE) == "cuda" && !cuda_available()) GTEST_SKIP() << "no CUDA GPU"; \
  } while (0)

SamplingParams params(int max_tokens, float temperature = 0.0f, uint64_t seed = 1) {
  return ::tllm::testing::test_params(max_tokens, temperature, seed);
}

void expect_same(const std::vector<LLMEngine::Completion>& a, const std::vector<LLMEngine::Completion>& b,
                 const std::string& where) {
  ::tllm::testing::expect_same_outputs(a, b, where);  // bit for bit
}

// Runs the engine until nothing is left in flight and checks that every KV block is free.
void drain(LLMEngine& engine, const std::string& where) {
  for (int i = 0; i < 4 && engine.has_unfinished_requests(); ++i) engine.step();
  EXPECT_FALSE(engine.has_unfinished_requests()) << where;
  const EngineStats s = engine.stats();
  EXPECT_EQ(s.num_free_kv_blocks + s.num_cached_free_blocks, s.num_kv_blocks) << where << ": blocks still held";
  EXPECT_EQ(s.num_running, 0) << where;
}

std::vector<std::vector<int32_t>> prompts(LLMEngine& engine) { return ::tllm::testing::demo_prompts(engine); }

TEST(AsyncScheduling, MixedBatchGivesTheSynchronousResults) {
  TLLM_ASYNC_SKIP_WITHOUT_DEVICE();
  // Greedy, seeded sampling with top-p / top-k / min-p, log-probs, prompt log-probs, min_tokens,
  // bad words, allowed token ids, a penalised request (its steps fall back to synchronous ones), chunked prefill (16-token
  // budget) and, in a second round, prompts that share a cached prefix.
  std::vector<SamplingParams> ps;
  ps.push_back(params(20));
  ps.back().logprobs = 3;
  ps.back().bad_words_ids = {{259}, {11, 269}, {11, 307}, {342, 533}};  // two-token words need the previous token
  ps.push_back(params(25, 0.8f, 7));
  ps.back().top_p = 0.9f;
  ps.push_back(params(12, 1.0f, 11));
  ps.back().top_k = 20;
  ps.back().min_p = 0.05f;
  for (int32_t t = 100; t < 600; ++t) ps.back().allowed_token_ids.push_back(t);
  ps.push_back(params(8));
  ps.back().prompt_logprobs = 2;
  ps.back().min_tokens = 4;
  ps.push_back(params(15, 0.7f, 3));
  ps.back().presence_penalty = 0.5f;
  ps.back().frequency_penalty = 0.3f;
  ps.back().repetition_penalty = 1.2f;

  std::vector<std::vector<LLMEngine::Completion>> got[2];
  for (int mode = 0; mode < 2; ++mode) {
    LLMEngine engine(config(mode ? "on" : "off", 16));
    const auto p = prompts(engine);
    got[mode].push_back(engine.generate(p, ps));
    // Round 2: each prompt is round 1's prompt and completion (cached in full blocks of 16 on
    // CUDA, so the prefix must be that long) and more.
    auto longer = p;
    for (size_t i = 0; i < longer.size(); ++i) {
      const auto& done = got[mode][0][i].token_ids;
      longer[i].insert(longer[i].end(), done.begin(), done.end());
      longer[i].insert(longer[i].end(), p[1].begin(), p[1].end());
    }
    got[mode].push_back(engine.generate(longer, ps));
    drain(engine, mode ? "async" : "sync");
    EXPECT_GT(engine.stats().prefix_cache_hits, 0u) << (mode ? "async" : "sync");
  }
  for (size_t r = 0; r < got[0].size(); ++r) expect_same(got[0][r], got[1][r], "round " + std::to_string(r));
}

TEST(AsyncScheduling, JsonModeAndLogitBiasGiveTheSynchronousResults) {
  TLLM_ASYNC_SKIP_WITHOUT_DEVICE();
  // JSON mode bans most of the vocabulary at every draw (the sampler's large-list path) and
  // needs the previous token on the host (its steps resolve before the next launches); beside
  // it a plain and a logit-biased request. Each JSON-mode output starts an object.
  LLMEngine probe(config("off"));
  const int32_t brace = *probe.tokenizer()->piece_to_id("}");
  std::vector<SamplingParams> ps = {params(30, 1.0f, 5), params(24), params(30, 0.9f, 8), params(20, 1.0f, 2)};
  ps[0].output_format = {OutputPiece::object()};
  ps[0].ignore_eos = false;
  ps[2].output_format = {OutputPiece::object()};
  ps[2].ignore_eos = false;
  ps[2].logit_bias = {{brace, 3.0f}};
  ps[3].logit_bias = {{brace, 2.0f}, {0, -1.0f}};
  std::vector<LLMEngine::Completion> got[2];
  for (int mode = 0; mode < 2; ++mode) {
    LLMEngine engine(config(mode ? "on" : "off"));
    auto p = prompts(engine);
    p.resize(ps.size());
    got[mode] = engine.generate(p, ps);
    drain(engine, mode ? "async" : "sync");
  }
  expect_same(got[0], got[1], "json mode");
  for (int i : {0, 2}) EXPECT_EQ(got[0][i].text.substr(0, 1), "{") << got[0][i].text;
}

TEST(AsyncScheduling, EagerStepsGiveTheSynchronousResults) {
  TLLM_ASYNC_SKIP_WITHOUT_DEVICE();
  // Without CUDA graphs (--enforce-eager) the fed tokens reach the embedding through the
  // op-by-op launches instead of a replay: three greedy and seeded requests of different
  // lengths (the batch shrinks as they finish), async against synchronous, both eager.
  std::vector<SamplingParams> ps = {params(12), params(20, 0.8f, 3), params(16, 1.0f, 9)};
  ps[2].top_k = 30;
  std::vector<LLMEngine::Completion> got[2];
  for (int mode = 0; mode < 2; ++mode) {
    EngineConfig c = config(mode ? "on" : "off");
    c.enforce_eager = true;
    LLMEngine engine(c);
    auto p = prompts(engine);
    p.resize(3);
    got[mode] = engine.generate(p, ps);
    drain(engine, mode ? "async" : "sync");
  }
  expect_same(got[0], got[1], "eager");
}

TEST(AsyncScheduling, StopsWhereTheSynchronousEngineStops) {
  TLLM_ASYNC_SKIP_WITHOUT_DEVICE();
  // A sequence that stops on a token or a string is found finished one step late: the step
  // launched meanwhile computes one more token, which must neither appear nor keep blocks.
  LLMEngine sync(config("off"));
  const auto p = prompts(sync);
  const LLMEngine::Completion free_run = sync.generate({p[0]}, {params(30)})[0];
  ASSERT_EQ(free_run.token_ids.size(), 30u);
  std::vector<SamplingParams> cases;
  cases.push_back(params(30));
  cases.back().stop_token_ids = {free_run.token_ids[9]};
  cases.push_back(params(30));
  cases.back().stop = {free_run.text.substr(free_run.text.size() / 2, 3)};
  cases.push_back(params(30, 0.9f, 5));
  cases.back().ignore_eos = false;  // may end on the demo model's EOS
  for (size_t k = 0; k < cases.size(); ++k) {
    LLMEngine fresh(config("off"));  // both engines start with an empty prefix cache
    const auto want = fresh.generate({p[0]}, {cases[k]});
    LLMEngine async(config("on"));
    const auto have = async.generate({p[0]}, {cases[k]});
    expect_same(want, have, "case " + std::to_string(k));
    if (k < 2) {
      EXPECT_EQ(have[0].finish_reason, FinishReason::Stop) << "case " << k;
      EXPECT_LT(have[0].token_ids.size(), 30u) << "case " << k;
    }
    drain(async, "case " + std::to_string(k));
  }
}

TEST(AsyncScheduling, AbortWhileAStepIsInFlight) {
  TLLM_ASYNC_SKIP_WITHOUT_DEVICE();
  // Both engines abort request a after three step() calls; in the async one a is then in the
  // step in flight. b runs in the same batches either way, so its tokens must match.
  std::vector<RequestOutput> seen[2];
  for (int mode = 0; mode < 2; ++mode) {
    LLMEngine engine(config(mode ? "on" : "off"));
    const auto p = prompts(engine);
    engine.add_request("a", p[0], params(40));
    engine.add_request("b", p[1], params(40, 0.8f, 9));
    for (int i = 0; i < 3; ++i)
      for (RequestOutput& o : engine.step()) seen[mode].push_back(std::move(o));
    engine.abort_request("a");
    engine.abort_request("a");  // twice: the second is a no-op
    while (engine.has_unfinished_requests())
      for (RequestOutput& o : engine.step()) seen[mode].push_back(std::move(o));
    drain(engine, mode ? "async" : "sync");
  }
  for (int mode = 0; mode < 2; ++mode) {
    std::vector<int32_t> b;
    int a_final = 0, a_after_final = 0;
    for (const RequestOutput& o : seen[mode]) {
      if (o.request_id == "b") b.insert(b.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      if (o.request_id != "a") continue;
      if (a_final) ++a_after_final;
      if (o.finished) {
        ++a_final;
        EXPECT_EQ(o.finish_reason, FinishReason::Abort);
      }
    }
    EXPECT_EQ(a_final, 1) << "mode " << mode;
    EXPECT_EQ(a_after_final, 0) << "mode " << mode;
    EXPECT_EQ(b.size(), 40u) << "mode " << mode;
    if (mode == 1) {
      std::vector<int32_t> b_sync;
      for (const RequestOutput& o : seen[0])
        if (o.request_id == "b") b_sync.insert(b_sync.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      EXPECT_EQ(b, b_sync);
    }
  }
}

TEST(AsyncScheduling, PreemptionUnderASmallCache) {
  TLLM_ASYNC_SKIP_WITHOUT_DEVICE();
  // A 96-token cache for 5 requests of ~10 + 30 tokens: running sequences are preempted
  // and recomputed, some of them with a drawn token still in flight.
  std::vector<std::vector<LLMEngine::Completion>> got(2);
  uint64_t preempted[2] = {0, 0};
  for (int mode = 0; mode < 2; ++mode) {
    LLMEngine engine(config(mode ? "on" : "off", 64, 96));
    got[mode] = engine.generate(prompts(engine), {params(30)});
    preempted[mode] = engine.stats().num_preemptions;
    drain(engine, mode ? "async" : "sync");
  }
  EXPECT_GT(preempted[1], 0u);
  for (size_t i = 0; i < got[1].size(); ++i) {
    EXPECT_EQ(got[1][i].token_ids.size(), 30u);
    EXPECT_EQ(got[1][i].finish_reason, FinishReason::Length);
  }
  expect_same(got[0], got[1], "preemption");
}

TEST(AsyncScheduling, RandomArrivalsAndAbortsKeepTheBooks) {
  TLLM_ASYNC_SKIP_WITHOUT_DEVICE();
  // Requests arrive and are aborted at random between steps, with stop ids, penalties and a
  // 40-token cache (48 in blocks of 16 on CUDA: a request takes up to 36; preemption); in both modes every request ends exactly once, nothing
  // follows its end, a Length finish has exactly max_tokens tokens, and every block is free
  // at the end.
  for (const char* mode : {"off", "on"}) {
    LLMEngine engine(config(mode, 16, std::string(TLLM_ASYNC_DEVICE) == "cuda" ? 48 : 40));
    ::tllm::testing::random_arrivals_and_aborts(engine, 1234, mode);
    drain(engine, mode);
  }
}

TEST(AsyncScheduling, RejectsAnUnknownMode) {
  TLLM_ASYNC_SKIP_WITHOUT_DEVICE();
  EXPECT_THROW(LLMEngine(config("sometimes")), std::exception);
}

}  // namespace
}  // namespace tllm
