// Async scheduling (EngineConfig::async_scheduling, engine.cpp): the next step is launched
// before the host has the sampled tokens of the one before (they are fed to the embedding
// from the draw), outputs come one step() later. On the CPU backend the draw is synchronous,
// so these runs take the same code path as a GPU that overlaps, without the overlap; their
// results must be those of the synchronous engine, token for token and bit for bit.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;

std::string demo_model() { return (fs::path(TLLM_SOURCE_DIR) / "models/tiny-qwen2-demo").string(); }

EngineConfig config(const std::string& async, int max_batched = 64, int kv_blocks = 256) {
  EngineConfig c;
  c.model_dir = demo_model();
  c.device = "cpu";
  c.threads = 2;
  c.block_size = 4;
  c.max_num_batched_tokens = max_batched;
  c.num_kv_blocks = kv_blocks;
  c.async_scheduling = async;
  return c;
}

SamplingParams params(int max_tokens, float temperature = 0.0f, uint64_t seed = 1) {
  SamplingParams p;
  p.max_tokens = max_tokens;
  p.temperature = temperature;
  p.seed = seed;
  p.ignore_eos = true;
  return p;
}

void expect_same(const std::vector<LLMEngine::Completion>& a, const std::vector<LLMEngine::Completion>& b,
                 const std::string& where) {
  ASSERT_EQ(a.size(), b.size()) << where;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string w = where + ", request " + std::to_string(i);
    EXPECT_EQ(a[i].token_ids, b[i].token_ids) << w;
    EXPECT_EQ(a[i].text, b[i].text) << w;
    EXPECT_EQ(a[i].finish_reason, b[i].finish_reason) << w;
    EXPECT_EQ(a[i].num_cached_tokens, b[i].num_cached_tokens) << w;
    ASSERT_EQ(a[i].logprobs.size(), b[i].logprobs.size()) << w;
    for (size_t j = 0; j < a[i].logprobs.size(); ++j) {
      EXPECT_EQ(a[i].logprobs[j].token, b[i].logprobs[j].token) << w << ", token " << j;
      EXPECT_EQ(a[i].logprobs[j].logprob, b[i].logprobs[j].logprob) << w << ", token " << j;
      EXPECT_EQ(a[i].logprobs[j].top, b[i].logprobs[j].top) << w << ", token " << j;
    }
    ASSERT_EQ(a[i].prompt_logprobs.has_value(), b[i].prompt_logprobs.has_value()) << w;
    if (a[i].prompt_logprobs) {
      ASSERT_EQ(a[i].prompt_logprobs->size(), b[i].prompt_logprobs->size()) << w;
      for (size_t j = 0; j < a[i].prompt_logprobs->size(); ++j) {
        ASSERT_EQ((*a[i].prompt_logprobs)[j].has_value(), (*b[i].prompt_logprobs)[j].has_value()) << w;
        if ((*a[i].prompt_logprobs)[j]) {
          EXPECT_EQ((*a[i].prompt_logprobs)[j]->logprob, (*b[i].prompt_logprobs)[j]->logprob) << w << ", prompt " << j;
        }
      }
    }
  }
}

// Runs the engine until nothing is left in flight and checks that every KV block is free.
void drain(LLMEngine& engine, const std::string& where) {
  for (int i = 0; i < 4 && engine.has_unfinished_requests(); ++i) engine.step();
  EXPECT_FALSE(engine.has_unfinished_requests()) << where;
  const EngineStats s = engine.stats();
  EXPECT_EQ(s.num_free_kv_blocks + s.num_cached_free_blocks, s.num_kv_blocks) << where << ": blocks still held";
  EXPECT_EQ(s.num_running, 0) << where;
}

std::vector<std::vector<int32_t>> prompts(LLMEngine& engine) {
  const Tokenizer& tok = *engine.tokenizer();
  std::vector<std::vector<int32_t>> p;
  for (const char* s : {"And the LORD said unto Moses,", "A computer", "In the beginning",
                        "A computer is a machine that", "Q: What is the meaning of life?\nA:"})
    p.push_back(tok.encode(s));
  return p;
}

TEST(AsyncScheduling, MixedBatchGivesTheSynchronousResults) {
  // Greedy, seeded sampling with top-p / top-k / min-p, log-probs, prompt log-probs, min_tokens,
  // a penalised request (its steps fall back to synchronous ones), chunked prefill (16-token
  // budget) and, in a second round, prompts that share a cached prefix.
  std::vector<SamplingParams> ps;
  ps.push_back(params(20));
  ps.back().logprobs = 3;
  ps.push_back(params(25, 0.8f, 7));
  ps.back().top_p = 0.9f;
  ps.push_back(params(12, 1.0f, 11));
  ps.back().top_k = 20;
  ps.back().min_p = 0.05f;
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
    auto longer = p;
    for (auto& q : longer) q.insert(q.end(), p[1].begin(), p[1].end());  // round 2: cached prefixes
    got[mode].push_back(engine.generate(longer, ps));
    drain(engine, mode ? "async" : "sync");
    if (mode) {
      EXPECT_GT(engine.stats().prefix_cache_hits, 0u);
    }
  }
  for (size_t r = 0; r < got[0].size(); ++r) expect_same(got[0][r], got[1][r], "round " + std::to_string(r));
}

TEST(AsyncScheduling, StopsWhereTheSynchronousEngineStops) {
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
  // 24 blocks of 4 tokens for 5 requests of ~10 + 30 tokens: running sequences are preempted
  // and recomputed, some of them with a drawn token still in flight.
  std::vector<std::vector<LLMEngine::Completion>> got(2);
  uint64_t preempted[2] = {0, 0};
  for (int mode = 0; mode < 2; ++mode) {
    LLMEngine engine(config(mode ? "on" : "off", 64, 24));
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

TEST(AsyncScheduling, RejectsAnUnknownMode) {
  EXPECT_THROW(LLMEngine(config("sometimes")), std::exception);
}

}  // namespace
}  // namespace tllm
