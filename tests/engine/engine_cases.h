// Pieces shared by the engine tests that compare two ways of running the same requests
// (async scheduling, speculative decoding): request parameters, the demo model's prompts, and
// a random stream of arrivals and aborts whose books must balance.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

namespace tllm::testing {

// ignore_eos: every request runs to max_tokens unless a stop condition of the test ends it.
inline SamplingParams test_params(int max_tokens, float temperature = 0.0f, uint64_t seed = 1) {
  SamplingParams p;
  p.max_tokens = max_tokens;
  p.temperature = temperature;
  p.seed = seed;
  p.ignore_eos = true;
  return p;
}

// Steps `engine` until no request is unfinished: each request's emitted tokens and its last output.
struct RunOutputs {
  std::map<std::string, std::vector<int32_t>> tokens;
  std::map<std::string, RequestOutput> last;
};
inline RunOutputs run_to_completion(LLMEngine& engine) {
  RunOutputs r;
  while (engine.has_unfinished_requests())
    for (RequestOutput& o : engine.step()) {
      std::vector<int32_t>& t = r.tokens[o.request_id];
      t.insert(t.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      r.last[o.request_id] = o;
    }
  return r;
}

inline std::vector<std::vector<int32_t>> demo_prompts(LLMEngine& engine) {
  const Tokenizer& tok = *engine.tokenizer();
  std::vector<std::vector<int32_t>> p;
  for (const char* s : {"And the LORD said unto Moses,", "A computer", "In the beginning",
                        "A computer is a machine that", "Q: What is the meaning of life?\nA:"})
    p.push_back(tok.encode(s));
  return p;
}

// Two runs of the same requests give the same tokens, texts, finish reasons and cache hits, and
// log-probs equal (tol 0) or within tol.
inline void expect_same_outputs(const std::vector<LLMEngine::Completion>& a, const std::vector<LLMEngine::Completion>& b,
                                const std::string& where, double tol = 0.0) {
  const auto near = [&](float x, float y, const std::string& w) {
    if (tol == 0.0) EXPECT_EQ(x, y) << w;
    else EXPECT_NEAR(x, y, tol) << w;
  };
  ASSERT_EQ(a.size(), b.size()) << where;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string w = where + ", request " + std::to_string(i);
    EXPECT_EQ(a[i].token_ids, b[i].token_ids) << w;
    EXPECT_EQ(a[i].text, b[i].text) << w;
    EXPECT_EQ(a[i].finish_reason, b[i].finish_reason) << w;
    EXPECT_EQ(a[i].num_cached_tokens, b[i].num_cached_tokens) << w;
    ASSERT_EQ(a[i].logprobs.size(), b[i].logprobs.size()) << w;
    for (size_t j = 0; j < a[i].logprobs.size(); ++j) {
      const TokenLogprob &x = a[i].logprobs[j], &y = b[i].logprobs[j];
      const std::string wj = w + ", token " + std::to_string(j);
      EXPECT_EQ(x.token, y.token) << wj;
      near(x.logprob, y.logprob, wj);
      ASSERT_EQ(x.top.size(), y.top.size()) << wj;
      for (size_t t = 0; t < x.top.size(); ++t) {
        EXPECT_EQ(x.top[t].first, y.top[t].first) << wj << ", top " << t;
        near(x.top[t].second, y.top[t].second, wj + ", top " + std::to_string(t));
      }
    }
    ASSERT_EQ(a[i].prompt_logprobs.has_value(), b[i].prompt_logprobs.has_value()) << w;
    if (!a[i].prompt_logprobs) continue;
    ASSERT_EQ(a[i].prompt_logprobs->size(), b[i].prompt_logprobs->size()) << w;
    for (size_t j = 0; j < a[i].prompt_logprobs->size(); ++j) {
      const auto &x = (*a[i].prompt_logprobs)[j], &y = (*b[i].prompt_logprobs)[j];
      ASSERT_EQ(x.has_value(), y.has_value()) << w;
      if (x) near(x->logprob, y->logprob, w + ", prompt " + std::to_string(j));
    }
  }
}

// Forty requests arrive and are aborted at random between steps (random prompts, greedy or
// sampled, a third with 400 stop ids, a fifth with a frequency penalty): every request ends
// exactly once, nothing follows its end, and a Length finish has exactly max_tokens tokens.
inline void random_arrivals_and_aborts(LLMEngine& engine, uint32_t seed, const std::string& where) {
  std::mt19937 rng(seed);
  std::map<std::string, int> max_tokens, tokens, finals;
  std::map<std::string, FinishReason> reason;
  std::vector<std::string> live;
  auto take = [&](std::vector<RequestOutput> outs) {
    for (const RequestOutput& o : outs) {
      EXPECT_EQ(finals[o.request_id], 0) << where << ": output after the end of " << o.request_id;
      tokens[o.request_id] += static_cast<int>(o.new_token_ids.size());
      if (o.finished) {
        ++finals[o.request_id];
        reason[o.request_id] = o.finish_reason;
        live.erase(std::remove(live.begin(), live.end(), o.request_id), live.end());
      }
    }
  };
  for (int next_id = 0; next_id < 40;) {
    const int action = static_cast<int>(rng() % 10);
    if (action < 5) {
      const std::string id = "q" + std::to_string(next_id++);
      std::vector<int32_t> prompt(1 + rng() % 12);
      for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % 4000);
      SamplingParams sp = test_params(1 + static_cast<int>(rng() % 24), (rng() % 2) ? 0.8f : 0.0f, rng());
      if (rng() % 3 == 0)  // 400 stop ids: about one token in ten stops
        for (int k = 0; k < 400; ++k) sp.stop_token_ids.push_back(static_cast<int32_t>(rng() % 4000));
      if (rng() % 5 == 0) sp.frequency_penalty = 0.5f;
      max_tokens[id] = sp.max_tokens;
      engine.add_request(id, prompt, sp);
      live.push_back(id);
    } else if (action < 7 && !live.empty()) {
      engine.abort_request(live[rng() % live.size()]);
    }
    if (engine.has_unfinished_requests()) take(engine.step());
  }
  while (engine.has_unfinished_requests()) take(engine.step());
  for (const auto& [id, m] : max_tokens) {
    EXPECT_EQ(finals[id], 1) << where << ": " << id;
    EXPECT_LE(tokens[id], m) << where << ": " << id;
    if (reason[id] == FinishReason::Length) {
      EXPECT_EQ(tokens[id], m) << where << ": " << id;
    }
  }
}

}  // namespace tllm::testing
