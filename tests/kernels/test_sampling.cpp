// Sampling semantics (backend.h SamplingRow / SampleBatch) on every CPU variant: greedy
// ties, keep sets of top-k / top-p / min-p against the naive full-sort reference,
// penalty formulas, banned tokens, logit biases, seeded determinism, the drawn distribution,
// and top log-probs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <limits>

#include "kernel_test_util.h"
#include "kernels/reference/reference.h"

namespace tllm::test {
namespace {

Tensor logits_of(const std::vector<std::vector<float>>& rows) {
  Tensor t = Tensor::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())}, DType::F32);
  for (size_t r = 0; r < rows.size(); ++r) std::copy(rows[r].begin(), rows[r].end(), t.data<float>() + r * rows[0].size());
  return t;
}

SampleBatch batch_of(std::vector<SamplingRow> rows) {
  SampleBatch b;
  b.rows = std::move(rows);
  return b;
}

class Sampling : public ::testing::TestWithParam<cpu::Isa> {
 protected:
  std::unique_ptr<CpuBackend> be = make_cpu_backend_isa(CpuBackendOptions{2}, GetParam());
};

TEST_P(Sampling, GreedyPicksLowestIdOnTies) {
  Tensor l = logits_of({{0.f, 3.f, 1.f, 5.f, 5.f, -2.f}, {7.f, 7.f, 7.f, 7.f, 7.f, 7.f}});
  SamplingRow g;
  g.temperature = 0.0f;
  SampleResult r = be->sample(l, batch_of({g, g}));
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{3, 0}));
  EXPECT_NEAR(r.logprobs[1], -std::log(6.0), 1e-6);
}

// Greedy over rows longer than a vector (the SIMD max / first-index scan): ties across lane
// and vector boundaries, NaN before, beside and after the maximum (NaN never wins), +inf,
// rows of only -inf or NaN (token 0), against the first index of the largest non-NaN value.
TEST_P(Sampling, GreedyLongRowsSkipNaNAndPickLowestId) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 2.0f);
  for (int V : {17, 33, 100, 1000, 151936}) {
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<float> row(V);
      for (float& v : row) v = d(rng);
      const int at = static_cast<int>(rng() % V);
      switch (trial % 6) {
        case 0: break;
        case 1:  // ties: the maximum again later, in another vector
          row[at] = 50.0f;
          row[(at + 1 + static_cast<int>(rng() % V)) % V] = 50.0f;
          break;
        case 2:  // NaN before, beside and after
          row[at] = 40.0f;
          for (int k = 0; k < V / 7 + 1; ++k) row[rng() % V] = nan;
          row[at] = 40.0f;
          if (at > 0) row[at - 1] = nan;
          break;
        case 3:  // +inf and NaN
          row[at] = inf;
          row[rng() % V] = nan;
          break;
        case 4:  // only -inf and NaN
          for (int i = 0; i < V; ++i) row[i] = i % 3 ? -inf : nan;
          break;
        case 5:  // NaN first in every vector lane
          for (int i = 0; i < V; i += 3) row[i] = nan;
          break;
      }
      int32_t want = 0;
      float best = -inf;
      bool found = false;
      for (int i = 0; i < V; ++i)
        if (!std::isnan(row[i]) && (!found || row[i] > best)) {
          if (row[i] == -inf && !found) continue;
          best = row[i];
          want = i;
          found = true;
        }
      SamplingRow g;
      g.temperature = 0.0f;
      const SampleResult r = be->sample(logits_of({row}), batch_of({g}));
      ASSERT_EQ(r.tokens[0], want) << "V=" << V << " trial " << trial;
    }
  }
}

// Sampled rows (temperature > 0, with and without top-k / top-p / min-p) whose logits hold no
// finite value (a model whose weights overflowed: all NaN, all -inf, or both) draw token 0 as
// greedy does; one finite logit among NaNs is drawn. (The draw returned -1 there, and the
// sampler read the logit before the row: found by ASan on a checkpoint with a NaN final norm.)
TEST_P(Sampling, SampledRowsWithoutAFiniteLogitDrawWhatGreedyDraws) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (int V : {7, 1000}) {
    std::vector<float> all_nan(V, nan), all_ninf(V, -inf), mixed(V, nan), one(V, nan);
    for (int i = 0; i < V; i += 2) mixed[i] = -inf;
    one[V - 2] = 0.5f;
    for (int keep = 0; keep < 4; ++keep) {
      SamplingRow row;
      row.temperature = 1.0f;
      row.seed = 11;
      if (keep == 1) row.top_k = 3;
      if (keep == 2) row.top_p = 0.5f;
      if (keep == 3) row.min_p = 0.2f;
      const SampleResult r = be->sample(logits_of({all_nan, all_ninf, mixed, one}), batch_of({row, row, row, row}));
      EXPECT_EQ(r.tokens, (std::vector<int32_t>{0, 0, 0, V - 2})) << "V=" << V << " keep " << keep;
    }
  }
}

TEST_P(Sampling, KeepSetsMatchNaiveReference) {
  std::mt19937_64 rng(11);
  int checked = 0;
  for (int V : {7, 200, 5000, 151936}) {
    for (int trial = 0; trial < (V > 10000 ? 8 : 30); ++trial) {
      Tensor l = randn({1, V}, rng, DType::F32, trial % 3 == 0 ? 0.3f : 3.0f);
      if (trial % 5 == 1) l.data<float>()[trial % V] = l.data<float>()[(trial + 1) % V];  // a tie
      SamplingRow row;
      row.temperature = std::vector<float>{1.0f, 0.7f, 1.5f, 0.0f}[trial % 4];
      row.top_k = std::vector<int>{0, 1, 5, 50, V + 3}[trial % 5];
      row.top_p = std::vector<float>{1.0f, 0.9f, 0.5f, 0.99f, 0.05f, 0.999f}[trial % 6];
      row.min_p = std::vector<float>{0.0f, 0.0f, 0.05f, 0.3f, 1.5f, 0.0f, 0.0f}[trial % 7];
      SampleBatch b = batch_of({row});
      const auto got = cpu::sample_keep_set(l.data<float>(), V, b, 0);
      const auto want = ref::sample_keep_set(l.data<float>(), V, b, 0);
      ASSERT_FALSE(got.empty());
      if (got != want) {
        // Float vs double sums may move the top-p boundary by tokens of negligible mass:
        // both sets must be prefixes of the sorted order and differ by < 1e-5 of the mass.
        const float* x = l.data<float>();
        std::vector<int32_t> order(V);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t c) { return x[a] > x[c]; });
        auto is_prefix = [&](const std::vector<int32_t>& set) {
          std::vector<int32_t> head(order.begin(), order.begin() + static_cast<int64_t>(set.size()));
          std::sort(head.begin(), head.end());
          return head == set;
        };
        ASSERT_TRUE(is_prefix(got) && is_prefix(want)) << "V " << V << " trial " << trial;
        const double t = row.temperature > 0 ? row.temperature : 1.0;
        double z = 0, between = 0;
        for (int i = 0; i < V; ++i) z += std::exp((x[i] - x[order[0]]) / t);
        for (size_t i = std::min(got.size(), want.size()); i < std::max(got.size(), want.size()); ++i)
          between += std::exp((x[order[i]] - x[order[0]]) / t);
        ASSERT_LT(between / z, 1e-5) << "V " << V << " trial " << trial << " T " << row.temperature << " k "
                                     << row.top_k << " p " << row.top_p << " min_p " << row.min_p << ": "
                                     << got.size() << " vs " << want.size() << " tokens";
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 90);
}

TEST_P(Sampling, TopKKeepsTiesAndTopPMinPFollowHf) {
  // probs of softmax([4, 3, 3, 2, 0]) ~ [0.53, 0.20, 0.20, 0.07, 0.01]
  std::vector<float> x{4.f, 3.f, 3.f, 2.f, 0.f};
  Tensor l = logits_of({x});
  SamplingRow row;
  row.top_k = 2;  // the k-th value (3) ties: both 3s stay, as HF's TopK
  EXPECT_EQ(cpu::sample_keep_set(l.data<float>(), 5, batch_of({row}), 0), (std::vector<int32_t>{0, 1, 2}));
  row = SamplingRow{};
  row.top_p = 0.5f;  // the first token alone already has 0.53 >= 0.5
  EXPECT_EQ(cpu::sample_keep_set(l.data<float>(), 5, batch_of({row}), 0), (std::vector<int32_t>{0}));
  row.top_p = 0.6f;  // needs the second token
  EXPECT_EQ(cpu::sample_keep_set(l.data<float>(), 5, batch_of({row}), 0), (std::vector<int32_t>{0, 1}));
  row = SamplingRow{};
  row.min_p = 0.3f;  // keep p >= 0.3 * p_max: exp(-1) = 0.37 stays, exp(-2) = 0.14 goes
  EXPECT_EQ(cpu::sample_keep_set(l.data<float>(), 5, batch_of({row}), 0), (std::vector<int32_t>{0, 1, 2}));
  row.temperature = 2.0f;  // after temperature exp(-2/2) = 0.37 >= 0.3 stays too
  EXPECT_EQ(cpu::sample_keep_set(l.data<float>(), 5, batch_of({row}), 0), (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST_P(Sampling, PenaltiesFollowTheFormulas) {
  std::vector<float> x{2.0f, -1.0f, 1.9f, 0.5f, -3.0f};
  Tensor l = logits_of({x, x, x});
  SampleBatch b;
  SamplingRow rep, pres, freq;
  rep.temperature = pres.temperature = freq.temperature = 0.0f;
  rep.repetition_penalty = 1.5f;   // 2.0 -> 1.333 (positive: divide) so 1.9 wins
  pres.presence_penalty = 0.3f;    // token 0 in output (count 2): 2.0 - 0.3 = 1.7 < 1.9
  freq.frequency_penalty = 0.06f;  // 2.0 - 0.06 * 2 = 1.88 < 1.9
  b.rows = {rep, pres, freq};
  b.penalty_offsets = {0, 1, 2, 3};
  b.penalty_tokens = {0, 0, 0};
  b.penalty_counts = {0, 2, 2};
  SampleResult r = be->sample(l, b);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{2, 2, 2}));
  // Weaker penalties keep token 0; a prompt-only token (count 0) gets no presence penalty.
  b.rows[1].presence_penalty = 0.05f;
  b.rows[2].frequency_penalty = 0.04f;
  b.penalty_counts = {0, 0, 1};
  b.rows[1].presence_penalty = 5.0f;
  r = be->sample(l, b);
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{2, 0, 0}));
  // Negative logits are multiplied: -1 * 1.5 = -1.5, checked through min_p sets.
  SamplingRow s;
  s.repetition_penalty = 1.5f;
  s.min_p = std::exp(-1.9f - 1.5f) * 0.999f;  // keeps exactly what has logit >= -1.5 after penalty
  SampleBatch b2;
  b2.rows = {s};
  b2.penalty_offsets = {0, 3};
  b2.penalty_tokens = {0, 1, 4};
  b2.penalty_counts = {0, 1, 0};
  Tensor l1 = logits_of({x});
  // processed: [2/1.5=1.333, -1.5, 1.9, 0.5, -4.5]; max 1.9; -1.5 - 1.9 = -3.4 kept, -4.5 not.
  EXPECT_EQ(cpu::sample_keep_set(l1.data<float>(), 5, b2, 0), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(ref::sample_keep_set(l1.data<float>(), 5, b2, 0), (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST_P(Sampling, BannedTokensAreNeverDrawn) {
  std::mt19937_64 rng(3);
  Tensor l = randn({1, 50}, rng, DType::F32, 2.0f);
  const int top = static_cast<int>(std::max_element(l.data<float>(), l.data<float>() + 50) - l.data<float>());
  SampleBatch b;
  SamplingRow g;
  g.temperature = 0.0f;
  b.rows = {g};
  b.banned_offsets = {0, 1};
  b.banned_tokens = {top};
  SampleResult r = be->sample(l, b);
  EXPECT_NE(r.tokens[0], top);
  b.rows[0].temperature = 5.0f;  // flat: every token likely
  for (uint64_t seed = 0; seed < 300; ++seed) {
    b.rows[0].seed = seed;
    ASSERT_NE(be->sample(l, b).tokens[0], top);
  }
}

// A logit bias is the same as adding it to the logits before the draw, penalties after it
// (vLLM's order): every draw equals the unbiased draw over the biased logits, and the
// reference's; the returned log-probs stay those of the raw logits.
TEST_P(Sampling, LogitBiasIsAddedBeforeThePenalties) {
  std::mt19937_64 rng(11);
  const int V = 700, R = 4;
  Tensor l = randn({R, V}, rng, DType::F32, 2.0f);
  SampleBatch b;
  for (int r = 0; r < R; ++r) {
    SamplingRow row;
    row.temperature = r == 0 ? 0.0f : 0.6f + 0.4f * r;
    row.top_k = r == 2 ? 30 : 0;
    row.top_p = r == 3 ? 0.8f : 1.0f;
    row.repetition_penalty = r == 1 ? 1.4f : 1.0f;
    row.num_top_logprobs = 3;
    b.rows.push_back(row);
  }
  // Row 0: +100 on its lowest logit (greedy must take it); row 1: a bias on a penalised token
  // (bias first, then the division); row 2: -100 on its top 5; row 3: none.
  const float* x = l.data<float>();
  const int low0 = static_cast<int>(std::min_element(x, x + V) - x);
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int c) { return x[2 * V + a] > x[2 * V + c]; });
  b.bias_offsets = {0, 1, 3, 8, 8};
  b.bias_tokens = {low0, 40, 41, order[0], order[1], order[2], order[3], order[4]};
  b.bias_values = {100.0f, 3.0f, -0.5f, -100.0f, -100.0f, -100.0f, -100.0f, -100.0f};
  b.penalty_offsets = {0, 0, 2, 2, 2};
  b.penalty_tokens = {40, 7};
  b.penalty_counts = {1, 0};
  // The same draw with the biases folded into the logits.
  Tensor biased = Tensor::empty({R, V}, DType::F32);
  std::copy(x, x + R * V, biased.data<float>());
  for (int r = 0; r < R; ++r)
    for (int32_t j = b.bias_offsets[r]; j < b.bias_offsets[r + 1]; ++j)
      biased.data<float>()[r * V + b.bias_tokens[j]] += b.bias_values[j];
  SampleBatch plain = b;
  plain.bias_offsets.clear();
  plain.bias_tokens.clear();
  plain.bias_values.clear();
  const SampleResult raw = be->sample(l, plain);
  for (uint64_t seed = 0; seed < 100; ++seed) {
    for (auto& row : b.rows) row.seed = seed;
    for (auto& row : plain.rows) row.seed = seed;
    const SampleResult got = be->sample(l, b), folded = be->sample(biased, plain), want = ref::sample(l, b);
    ASSERT_EQ(got.tokens, folded.tokens) << "seed " << seed;
    ASSERT_EQ(got.tokens, want.tokens) << "seed " << seed;
    EXPECT_EQ(got.tokens[0], low0);
    for (int k = 0; k < 5; ++k) ASSERT_NE(got.tokens[2], order[k]) << "seed " << seed;
    for (int r = 0; r < R; ++r) EXPECT_NEAR(got.logprobs[r], want.logprobs[r], 1e-5) << "raw log-prob, row " << r;
  }
  // Log-probs are the raw ones: the top entries of a biased row are the unbiased row's.
  const SampleResult got = be->sample(l, b);
  for (int r = 0; r < R; ++r) EXPECT_EQ(got.top_logprobs[r], raw.top_logprobs[r]) << "row " << r;
  // Where the order decides a greedy draw: bias first, (1 + 2) / 2 = 1.5 < 2; bias after the
  // repetition penalty would be 1 / 2 + 2 = 2.5 > 2.
  SamplingRow g;
  g.temperature = 0.0f;
  g.repetition_penalty = 2.0f;
  SampleBatch ob = batch_of({g});
  ob.penalty_offsets = {0, 1};
  ob.penalty_tokens = {1};
  ob.penalty_counts = {1};
  ob.bias_offsets = {0, 1};
  ob.bias_tokens = {1};
  ob.bias_values = {2.0f};
  EXPECT_EQ(be->sample(logits_of({{2.0f, 1.0f}}), ob).tokens[0], 0);
  ob.bias_values = {3.2f};  // (1 + 3.2) / 2 = 2.1 > 2
  EXPECT_EQ(be->sample(logits_of({{2.0f, 1.0f}}), ob).tokens[0], 1);
}

// allow_only rows (structured output's short lists): the same draws as banning every other
// token, and the reference's; penalties and biases still apply to the allowed ones; raw
// log-probs unchanged.
TEST_P(Sampling, AllowOnlyEqualsBanningTheRest) {
  std::mt19937_64 rng(23);
  const int V = 900, R = 5;
  Tensor l = randn({R, V}, rng, DType::F32, 2.0f);
  SampleBatch allow, ban;
  for (int r = 0; r < R; ++r) {
    SamplingRow row;
    row.temperature = r == 0 ? 0.0f : 0.5f + 0.3f * r;
    row.top_k = r == 2 ? 5 : 0;
    row.top_p = r == 3 ? 0.7f : 1.0f;
    row.repetition_penalty = r == 4 ? 1.5f : 1.0f;
    row.num_top_logprobs = 2;
    allow.rows.push_back(row);
    ban.rows.push_back(row);
    allow.rows.back().allow_only = r != 1;  // row 1: an ordinary ban list in the same batch
  }
  allow.banned_offsets = {0};
  ban.banned_offsets = {0};
  for (int r = 0; r < R; ++r) {
    std::vector<uint8_t> in(V, 0);
    const int n = r == 3 ? 1 : 3 + 17 * r;  // row 3: one token allowed
    for (int j = 0; j < n; ++j) in[static_cast<size_t>(rng() % V)] = 1;
    for (int32_t t = 0; t < V; ++t) {
      if (r == 1 ? !in[t] : in[t]) allow.banned_tokens.push_back(t);
      if (!in[t]) ban.banned_tokens.push_back(t);
    }
    allow.banned_offsets.push_back(static_cast<int32_t>(allow.banned_tokens.size()));
    ban.banned_offsets.push_back(static_cast<int32_t>(ban.banned_tokens.size()));
  }
  for (SampleBatch* b : {&allow, &ban}) {
    b->penalty_offsets = {0, 0, 0, 0, 0, 2};
    b->penalty_tokens = {allow.banned_tokens[allow.banned_offsets[4]], 3};
    b->penalty_counts = {2, 0};
    b->bias_offsets = {0, 0, 0, 1, 1, 1};
    b->bias_tokens = {allow.banned_tokens[allow.banned_offsets[2] + 1]};
    b->bias_values = {50.0f};
  }
  for (uint64_t seed = 0; seed < 60; ++seed) {
    for (auto& row : allow.rows) row.seed = seed;
    for (auto& row : ban.rows) row.seed = seed;
    const SampleResult got = be->sample(l, allow), want = be->sample(l, ban), refd = ref::sample(l, allow);
    ASSERT_EQ(got.tokens, want.tokens) << "seed " << seed;
    ASSERT_EQ(got.tokens, refd.tokens) << "seed " << seed;
    EXPECT_EQ(got.top_logprobs, want.top_logprobs);
    for (int r = 0; r < R; ++r) {
      const bool listed = std::binary_search(allow.banned_tokens.begin() + allow.banned_offsets[r],
                                             allow.banned_tokens.begin() + allow.banned_offsets[r + 1], got.tokens[r]);
      EXPECT_EQ(listed, r != 1) << "row " << r << " drew " << got.tokens[r];
    }
    EXPECT_EQ(got.tokens[2], allow.bias_tokens[0]);  // +50 on an allowed token
  }
}

TEST_P(Sampling, SameSeedSameTokenAndMatchesReference) {
  std::mt19937_64 rng(5);
  const int V = 1000, R = 6;
  Tensor l = randn({R, V}, rng, DType::F32, 2.0f);
  SampleBatch b;
  for (int r = 0; r < R; ++r) {
    SamplingRow row;
    row.temperature = 0.5f + 0.3f * r;
    row.top_k = r % 2 ? 40 : 0;
    row.top_p = r % 3 ? 0.9f : 1.0f;
    row.min_p = r == 5 ? 0.02f : 0.0f;
    row.seed = 1000 + r;
    row.offset = static_cast<uint64_t>(r) * 7;
    row.num_top_logprobs = r;
    b.rows.push_back(row);
  }
  b.penalty_offsets = {0, 0, 2, 2, 3, 3, 4};
  b.penalty_tokens = {5, 9, 5, 17};
  b.penalty_counts = {1, 0, 3, 2};
  for (auto& row : b.rows) {
    row.repetition_penalty = 1.1f;
    row.frequency_penalty = 0.2f;
    row.presence_penalty = 0.1f;
  }
  const SampleResult a = be->sample(l, b), a2 = be->sample(l, b), want = ref::sample(l, b);
  EXPECT_EQ(a.tokens, a2.tokens);
  EXPECT_EQ(a.tokens, want.tokens);
  for (int r = 0; r < R; ++r) {
    EXPECT_NEAR(a.logprobs[r], want.logprobs[r], 1e-5);
    ASSERT_EQ(a.top_logprobs[r].size(), want.top_logprobs[r].size());
    for (size_t i = 0; i < a.top_logprobs[r].size(); ++i) {
      EXPECT_EQ(a.top_logprobs[r][i].first, want.top_logprobs[r][i].first);
      EXPECT_NEAR(a.top_logprobs[r][i].second, want.top_logprobs[r][i].second, 1e-5);
    }
  }
  // Many seeds: the draws agree with the reference race token for token.
  int differ_offset = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    for (auto& row : b.rows) row.seed = seed;
    const SampleResult x = be->sample(l, b), y = ref::sample(l, b);
    ASSERT_EQ(x.tokens, y.tokens) << "seed " << seed;
    b.rows[0].offset += 1;
    differ_offset += be->sample(l, b).tokens[0] != x.tokens[0];
    b.rows[0].offset -= 1;
  }
  EXPECT_GT(differ_offset, 10);  // the offset feeds the stream
}

TEST_P(Sampling, DrawsFollowTheDistribution) {
  // Pearson chi-square over 20000 seeds, 4 degrees of freedom: p < 1e-4 above 23.5.
  const std::vector<float> x{1.0f, 0.2f, -0.5f, 2.0f, 0.0f};
  const float temperature = 0.8f;
  Tensor l = logits_of({x});
  std::vector<double> p(x.size());
  double z = 0;
  for (size_t i = 0; i < x.size(); ++i) z += (p[i] = std::exp(x[i] / temperature));
  for (double& v : p) v /= z;
  SamplingRow row;
  row.temperature = temperature;
  SampleBatch b = batch_of({row});
  const int n = 20000;
  std::vector<int> hist(x.size(), 0);
  for (int s = 0; s < n; ++s) {
    b.rows[0].seed = 77;
    b.rows[0].offset = static_cast<uint64_t>(s);
    hist[be->sample(l, b).tokens[0]]++;
  }
  double chi2 = 0;
  for (size_t i = 0; i < x.size(); ++i) chi2 += (hist[i] - n * p[i]) * (hist[i] - n * p[i]) / (n * p[i]);
  EXPECT_LT(chi2, 23.5) << "histogram " << hist[0] << " " << hist[1] << " " << hist[2] << " " << hist[3] << " " << hist[4];

  // With top-k 2 the draw renormalises over {3, 0}.
  b.rows[0].top_k = 2;
  std::vector<int> h2(x.size(), 0);
  for (int s = 0; s < n; ++s) {
    b.rows[0].seed = static_cast<uint64_t>(s) * 31 + 1;
    h2[be->sample(l, b).tokens[0]]++;
  }
  EXPECT_EQ(h2[1] + h2[2] + h2[4], 0);
  const double p3 = p[3] / (p[3] + p[0]);
  EXPECT_NEAR(h2[3] / static_cast<double>(n), p3, 4 * std::sqrt(p3 * (1 - p3) / n));
}

TEST_P(Sampling, TopLogprobsAreOrderedRawLogSoftmax) {
  std::vector<float> x{1.0f, 3.0f, 3.0f, -1.0f, 2.5f, 3.0f};
  Tensor l = logits_of({x});
  SamplingRow row;
  row.temperature = 0.0f;
  row.num_top_logprobs = 4;
  row.repetition_penalty = 2.0f;  // processing does not change the reported log-probs
  SampleBatch b = batch_of({row});
  b.penalty_offsets = {0, 1};
  b.penalty_tokens = {1};
  b.penalty_counts = {1};
  SampleResult r = be->sample(l, b);
  double z = 0;
  for (float v : x) z += std::exp(v);
  const float lse = static_cast<float>(std::log(z));
  ASSERT_EQ(r.top_logprobs[0].size(), 4u);
  const std::vector<int32_t> ids{1, 2, 5, 4};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.top_logprobs[0][i].first, ids[i]);
    EXPECT_NEAR(r.top_logprobs[0][i].second, x[ids[i]] - lse, 1e-6);
  }
  EXPECT_EQ(r.tokens[0], 2);  // token 1 penalised to 1.5
  EXPECT_NEAR(r.logprobs[0], 3.0f - lse, 1e-6);
}

TEST_P(Sampling, RejectsBadBatches) {
  Tensor l = logits_of({{0.f, 1.f}});
  SampleBatch b = batch_of({SamplingRow{}});
  b.banned_offsets = {0, 1};
  b.banned_tokens = {2};
  EXPECT_THROW(be->sample(l, b), InvalidArgument);
  EXPECT_THROW(be->sample(l, batch_of({})), InvalidArgument);
  SampleBatch biased = batch_of({SamplingRow{}});
  biased.bias_offsets = {0, 2};
  biased.bias_tokens = {1, 1};  // a token twice
  biased.bias_values = {1.0f, 2.0f};
  EXPECT_THROW(be->sample(l, biased), InvalidArgument);
  biased.bias_tokens = {0, 1};
  biased.bias_values = {1.0f};  // one value for two tokens
  EXPECT_THROW(be->sample(l, biased), InvalidArgument);
}

// Deferred draws (async scheduling): the same tokens as sample(), two tickets at once, the
// ids patched into a token array where rows say so, and clear errors for misuse.
TEST_P(Sampling, DeferredDrawsFeedTheirTokens) {
  Tensor l1 = logits_of({{0.f, 3.f, 1.f}, {9.f, 1.f, 2.f}});
  Tensor l2 = logits_of({{0.f, 0.f, 4.f}});
  SamplingRow g;
  g.temperature = 0.0f;
  const SampleResult want1 = be->sample(l1, batch_of({g, g}));
  const int t1 = be->sample_deferred(l1, batch_of({g, g}));
  const int t2 = be->sample_deferred(l2, batch_of({g}));
  EXPECT_NE(t1, t2);
  EXPECT_THROW(be->sample_deferred(l2, batch_of({g})), std::exception);  // a third outstanding draw
  Tensor tokens = Tensor::empty({4}, DType::I32);
  std::vector<int32_t> init = {7, 7, 7, 7};
  std::copy(init.begin(), init.end(), tokens.data<int32_t>());
  be->feed_tokens(tokens, {1, -1, 0, -1}, t1);
  EXPECT_EQ(std::vector<int32_t>(tokens.data<int32_t>(), tokens.data<int32_t>() + 4),
            (std::vector<int32_t>{want1.tokens[1], 7, want1.tokens[0], 7}));
  be->feed_tokens(tokens, {-1, 0, -1, -1}, t2);
  EXPECT_EQ(tokens.data<int32_t>()[1], 2);
  EXPECT_THROW(be->feed_tokens(tokens, {2, -1, -1, -1}, t1), std::exception);  // row past the draw
  EXPECT_THROW(be->feed_tokens(tokens, {0, -1}, t1), std::exception);          // size mismatch
  EXPECT_THROW(be->feed_tokens(tokens, {0, -1, -1, -1}, 5), std::exception);   // no such ticket
  const SampleResult got1 = be->collect_sample(t1);
  EXPECT_EQ(got1.tokens, want1.tokens);
  EXPECT_EQ(got1.logprobs, want1.logprobs);
  EXPECT_EQ(be->collect_sample(t2).tokens, (std::vector<int32_t>{2}));
  EXPECT_THROW(be->collect_sample(t1), std::exception);  // collected already
  // A bad batch takes no ticket: both are free for the next two draws.
  SamplingRow bad;
  bad.temperature = -1.0f;
  EXPECT_THROW(be->sample_deferred(l2, batch_of({bad})), InvalidArgument);
  const int t3 = be->sample_deferred(l2, batch_of({g}));
  const int t4 = be->sample_deferred(l2, batch_of({g}));
  EXPECT_EQ(be->collect_sample(t3).tokens, (std::vector<int32_t>{2}));
  EXPECT_EQ(be->collect_sample(t4).tokens, (std::vector<int32_t>{2}));
}

INSTANTIATE_TEST_SUITE_P(Cpu, Sampling, ::testing::ValuesIn(supported_isas()),
                         [](const auto& info) { return std::string(cpu::isa_name(info.param)); });

}  // namespace
}  // namespace tllm::test
