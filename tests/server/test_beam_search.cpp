// The beam search of server/beam_search.h on a toy model whose next-token logprobs are a
// fixed function of the last token: against an exhaustive search where the beam is wide
// enough to keep every candidate, and on small cases worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "server/beam_search.h"

namespace tllm {
namespace {

constexpr int32_t kEos = 3;

// log p(next | last) over tokens 0..3 (3 ends the sequence); the prompt's last token is 0.
double toy_logprob(int32_t last, int32_t next) {
  static const double p[4][4] = {{0.5, 0.2, 0.2, 0.1}, {0.1, 0.3, 0.25, 0.35}, {0.4, 0.05, 0.45, 0.1}, {0.25, 0.25, 0.25, 0.25}};
  return std::log(p[last][next]);
}

// The step the search asks for: every token, most likely first (ties by id).
std::vector<std::vector<std::pair<int32_t, float>>> toy_step(const std::vector<std::vector<int32_t>>& beams) {
  std::vector<std::vector<std::pair<int32_t, float>>> out;
  for (const auto& b : beams) {
    const int32_t last = b.empty() ? 0 : b.back();
    std::vector<std::pair<int32_t, float>> next;
    for (int32_t t = 0; t < 4; ++t) next.push_back({t, static_cast<float>(toy_logprob(last, t))});
    std::stable_sort(next.begin(), next.end(), [](const auto& a, const auto& c) { return a.second > c.second; });
    out.push_back(next);
  }
  return out;
}

// Every sequence the search can end with: those ended by eos within max_tokens, and those of
// exactly max_tokens tokens; cumulative logprobs summed in float as the search does.
void enumerate(std::vector<int32_t>& prefix, double cum, int max_tokens, std::vector<Beam>& out) {
  for (int32_t t = 0; t < 4; ++t) {
    const int32_t last = prefix.empty() ? 0 : prefix.back();
    Beam b;
    b.tokens = prefix;
    b.tokens.push_back(t);
    b.cum_logprob = cum + static_cast<float>(toy_logprob(last, t));
    b.ended = t == kEos;
    if (b.ended || static_cast<int>(b.tokens.size()) == max_tokens) {
      out.push_back(b);
    } else {
      enumerate(b.tokens, b.cum_logprob, max_tokens, out);
    }
  }
}

TEST(BeamSearch, AWideBeamIsTheExhaustiveSearch) {
  for (double penalty : {0.0, 0.5, 1.0, 2.0}) {
    for (int prompt_len : {1, 5}) {
      SCOPED_TRACE("length_penalty " + std::to_string(penalty) + ", prompt " + std::to_string(prompt_len));
      BeamSearchParams p;
      p.beam_width = 10;
      p.max_tokens = 3;
      p.length_penalty = penalty;
      const std::vector<Beam> got = beam_search(prompt_len, p, {kEos}, toy_step);
      std::vector<int32_t> prefix;
      std::vector<Beam> all;
      enumerate(prefix, 0.0, p.max_tokens, all);
      std::stable_sort(all.begin(), all.end(), [&](const Beam& a, const Beam& b) {
        return beam_score(a, prompt_len, penalty) > beam_score(b, prompt_len, penalty);
      });
      ASSERT_EQ(got.size(), 10u);
      for (size_t i = 0; i < got.size(); ++i) {
        // Equal scores may come in another order; the scores themselves must match.
        EXPECT_NEAR(beam_score(got[i], prompt_len, penalty), beam_score(all[i], prompt_len, penalty), 1e-12) << i;
        EXPECT_EQ(got[i].ended, got[i].tokens.back() == kEos);
      }
    }
  }
}

TEST(BeamSearch, SmallCasesByHand) {
  BeamSearchParams p;
  p.beam_width = 1;
  p.max_tokens = 3;
  // Width 1 with ignore_eos follows the most likely token: 0, 0, 0.
  p.ignore_eos = true;
  std::vector<Beam> got = beam_search(1, p, {kEos}, toy_step);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].tokens, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_FALSE(got[0].ended);
  EXPECT_NEAR(got[0].cum_logprob, 3 * std::log(0.5), 1e-6);
  // With eos: step 1 finishes [3] (log 0.1, over 1 token of prompt: length 1) while the beam
  // goes on with 0; at the end [0 0 0] scores 3 log 0.5 / 4 = -0.52 and [3] log 0.1 / 1 = -2.3.
  p.ignore_eos = false;
  got = beam_search(1, p, {kEos}, toy_step);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].tokens, (std::vector<int32_t>{0, 0, 0}));
  // A length penalty of 0 ranks by the cumulative logprob alone: [0 0 0] (3 log .5 = -2.08)
  // still beats the finished [3] (log .1 = -2.30) and [0 3] (-3.00).
  p.length_penalty = 0.0;
  got = beam_search(1, p, {kEos}, toy_step);
  EXPECT_EQ(got[0].tokens, (std::vector<int32_t>{0, 0, 0}));
  // Width 2, two steps, no penalty. Step 1: [3] finishes (-2.30); [0] (-0.69) and [1] (-1.61,
  // listed before the equally likely [2]) go on. Step 2: [0 0] -1.39, [0 1] and [0 2] -2.30,
  // [1 3] finishes at -2.66, [1 1] -2.81; the live two are [0 0] and [0 1]. Final ranking:
  // [0 0], then [3] and [0 1] at -2.30 (the finished beams come first in the stable sort).
  p.beam_width = 2;
  p.max_tokens = 2;
  got = beam_search(1, p, {kEos}, toy_step);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].tokens, (std::vector<int32_t>{0, 0}));
  EXPECT_EQ(got[1].tokens, (std::vector<int32_t>{3}));
  EXPECT_TRUE(got[1].ended);
  // Every beam ended: the search stops at once (one step, not max_tokens).
  int steps = 0;
  auto only_eos = [&](const std::vector<std::vector<int32_t>>& beams) {
    ++steps;
    return std::vector<std::vector<std::pair<int32_t, float>>>(beams.size(), {{kEos, -0.1f}, {kEos, -0.2f}});
  };
  got = beam_search(1, p, {kEos}, only_eos);
  EXPECT_EQ(steps, 1);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FLOAT_EQ(static_cast<float>(got[0].cum_logprob), -0.1f);
}

}  // namespace
}  // namespace tllm
