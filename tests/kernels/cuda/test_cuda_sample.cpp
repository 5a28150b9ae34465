// sample and log_softmax_to_host against the reference (and the CPU backend): greedy and
// seeded draws must pick the same tokens; log-probs agree to f32 precision.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/cuda/cuda_test_util.h"
#include "kernels/reference/reference.h"

namespace tllm::test {
namespace {

using CudaSample = CudaTest;

Tensor random_logits(std::mt19937_64& rng, int R, int V, float std = 3.0f) {
  return randn({R, V}, rng, DType::F32, std);
}

void expect_same(const SampleResult& got, const SampleResult& want, const SampleBatch& batch, const std::string& what) {
  ASSERT_EQ(got.tokens.size(), want.tokens.size()) << what;
  for (size_t r = 0; r < got.tokens.size(); ++r) {
    EXPECT_EQ(got.tokens[r], want.tokens[r]) << what << " row " << r;
    EXPECT_NEAR(got.logprobs[r], want.logprobs[r], 2e-4) << what << " row " << r;
    ASSERT_EQ(got.top_logprobs[r].size(), want.top_logprobs[r].size()) << what << " row " << r;
    for (size_t i = 0; i < got.top_logprobs[r].size(); ++i) {
      EXPECT_EQ(got.top_logprobs[r][i].first, want.top_logprobs[r][i].first) << what << " row " << r << " top " << i;
      EXPECT_NEAR(got.top_logprobs[r][i].second, want.top_logprobs[r][i].second, 2e-4) << what;
    }
  }
  (void)batch;
}

TEST_F(CudaSample, GreedyMatchesArgmax) {
  std::mt19937_64 rng(91);
  for (int V : {1000, 151936, 33}) {
    const int R = 6;
    Tensor logits = random_logits(rng, R, V);
    logits.data<float>()[2 * V + 17 % V] = 100.0f;  // a clear winner
    logits.data<float>()[3 * V + 5 % V] = 50.0f;     // a tie: the lower id wins
    logits.data<float>()[3 * V + 9 % V] = 50.0f;
    SampleBatch batch;
    batch.rows.resize(R);
    for (int r = 0; r < R; ++r) {
      batch.rows[r].temperature = 0.0f;
      batch.rows[r].num_top_logprobs = r;
    }
    SampleResult got = be().sample(dev(logits), batch);
    expect_same(got, ref::sample(logits, batch), batch, "greedy V=" + std::to_string(V));
  }
}

// The first pass over a large row is split into chunks read by many blocks: the merge must
// keep the lowest id on ties across chunks and give the exact raw logprob, at every row
// count (the split depends on R).
TEST_F(CudaSample, GreedySplitRowsMatchArgmax) {
  std::mt19937_64 rng(93);
  for (int R : {1, 2, 5, 40}) {
    const int V = 151936;
    Tensor logits = random_logits(rng, R, V);
    float* d = logits.data<float>();
    for (int r = 0; r < R; ++r) {
      const int a = static_cast<int>(rng() % 1000), b = V - 1 - static_cast<int>(rng() % 1000);
      d[static_cast<int64_t>(r) * V + a] = 40.0f + r;  // equal maxima far apart: the lower id wins
      d[static_cast<int64_t>(r) * V + b] = 40.0f + r;
    }
    SampleBatch batch;
    batch.rows.resize(R);
    for (int r = 0; r < R; ++r) batch.rows[r].temperature = 0.0f;
    SampleResult got = be().sample(dev(logits), batch);
    expect_same(got, ref::sample(logits, batch), batch, "greedy split R=" + std::to_string(R));
  }
}

TEST_F(CudaSample, SeededDrawsMatchReferenceAndCpu) {
  std::mt19937_64 rng(92);
  auto cpu = make_cpu_backend();
  const int V = 151936, R = 8;
  std::vector<SamplingRow> configs(R);
  configs[0].temperature = 1.0f;
  configs[1].temperature = 0.7f, configs[1].top_k = 50;
  configs[2].temperature = 1.3f, configs[2].top_p = 0.9f;
  configs[3].top_k = 100, configs[3].top_p = 0.8f, configs[3].min_p = 0.05f;
  configs[4].min_p = 0.1f, configs[4].temperature = 0.9f;
  configs[5].repetition_penalty = 1.3f, configs[5].presence_penalty = 0.5f, configs[5].frequency_penalty = 0.2f;
  configs[6].top_k = 1;
  configs[7].temperature = 2.0f, configs[7].top_p = 0.5f, configs[7].num_top_logprobs = 20;
  for (int trial = 0; trial < 6; ++trial) {
    Tensor logits = random_logits(rng, R, V, trial % 2 ? 2.0f : 4.0f);
    SampleBatch batch;
    batch.rows = configs;
    batch.penalty_offsets = {0};
    batch.banned_offsets = {0};
    for (int r = 0; r < R; ++r) {
      batch.rows[r].seed = 1234 + trial;
      batch.rows[r].offset = static_cast<uint64_t>(trial * 7 + r);
      // Penalties with a duplicate id; the row-0 ones have no effect. 30 per row keep the draw's
      // inputs under kSampleInlineBytes (they travel in the launch parameters), 600 per row
      // (~9.6 KB) go through an upload.
      const int n_pen = trial < 3 ? 30 : 600;
      if (r == 5 || r == 0) {
        for (int j = 0; j < n_pen; ++j) {
          batch.penalty_tokens.push_back(static_cast<int32_t>((j * 977 + trial) % V));
          batch.penalty_counts.push_back(j % 3);
        }
        batch.penalty_tokens.push_back(batch.penalty_tokens.back());
        batch.penalty_counts.push_back(2);
      }
      batch.penalty_offsets.push_back(static_cast<int32_t>(batch.penalty_tokens.size()));
      if (r == 1) {  // ban the current best
        int best = 0;
        for (int i = 1; i < V; ++i)
          if (logits.data<float>()[r * V + i] > logits.data<float>()[r * V + best]) best = i;
        batch.banned_tokens.push_back(best);
      }
      batch.banned_offsets.push_back(static_cast<int32_t>(batch.banned_tokens.size()));
    }
    for (int r = 0; r < R; ++r) batch.rows[5].repetition_penalty = r == 5 ? 1.3f : batch.rows[5].repetition_penalty;
    // Logit biases (trials 1, 2 and 4, 5): row 2 pushes a tail token up to the top, row 5 biases
    // some of its penalised tokens, row 7 buries its 40 best; the other rows none.
    if (trial % 3 != 0) {
      batch.bias_offsets = {0};
      for (int r = 0; r < R; ++r) {
        const float* row = logits.data<float>() + static_cast<int64_t>(r) * V;
        if (r == 2) {
          batch.bias_tokens.push_back(static_cast<int32_t>(std::min_element(row, row + V) - row));
          batch.bias_values.push_back(60.0f);
        } else if (r == 5) {
          for (int j = 0; j < 8; ++j) {
            batch.bias_tokens.push_back(static_cast<int32_t>((j * 977 + trial) % V));
            batch.bias_values.push_back(j % 2 ? 4.0f : -2.0f);
          }
        } else if (r == 7) {
          std::vector<int32_t> ids(V);
          std::iota(ids.begin(), ids.end(), 0);
          std::partial_sort(ids.begin(), ids.begin() + 40, ids.end(), [&](int a, int b) { return row[a] > row[b]; });
          for (int j = 0; j < 40; ++j) {
            batch.bias_tokens.push_back(ids[j]);
            batch.bias_values.push_back(-100.0f);
          }
        }
        batch.bias_offsets.push_back(static_cast<int32_t>(batch.bias_tokens.size()));
      }
    }
    SampleResult got = be().sample(dev(logits), batch);
    expect_same(got, ref::sample(logits, batch), batch, "seeded vs reference, trial " + std::to_string(trial));
    expect_same(got, cpu->sample(logits, batch), batch, "seeded vs cpu backend, trial " + std::to_string(trial));
  }
}

// allow_only rows (structured output): the listed tokens are the only ones drawn, the same
// draws as the reference and the CPU backend and as banning every other token; a short list
// (inline inputs) and long ones (uploaded), with penalties and biases on allowed tokens.
TEST_F(CudaSample, AllowOnlyRowsMatchReferenceAndCpu) {
  std::mt19937_64 rng(31);
  auto cpu = make_cpu_backend();
  const int V = 151936, R = 4;
  for (int trial = 0; trial < 4; ++trial) {
    Tensor logits = random_logits(rng, R, V, 3.0f);
    SampleBatch allow, ban;
    for (int r = 0; r < R; ++r) {
      SamplingRow row;
      row.temperature = r == 0 ? 0.0f : 0.7f + 0.2f * r;
      row.top_k = r == 2 ? 20 : 0;
      row.top_p = r == 3 ? 0.8f : 1.0f;
      row.repetition_penalty = r == 1 ? 1.3f : 1.0f;
      row.num_top_logprobs = r == 3 ? 5 : 0;
      row.seed = 77 + trial;
      row.offset = static_cast<uint64_t>(r);
      allow.rows.push_back(row);
      ban.rows.push_back(row);
      allow.rows.back().allow_only = true;
    }
    allow.banned_offsets = {0};
    ban.banned_offsets = {0};
    allow.penalty_offsets = {0};
    for (int r = 0; r < R; ++r) {
      // Trial 0: 3 tokens per row (inline); then up to 20,000 (uploaded).
      const int n = trial == 0 ? 3 : 500 * (r + 1) * trial;
      std::vector<uint8_t> in(V, 0);
      for (int j = 0; j < n; ++j) in[static_cast<size_t>(rng() % V)] = 1;
      for (int32_t t = 0; t < V; ++t) (in[t] ? allow.banned_tokens : ban.banned_tokens).push_back(t);
      allow.banned_offsets.push_back(static_cast<int32_t>(allow.banned_tokens.size()));
      ban.banned_offsets.push_back(static_cast<int32_t>(ban.banned_tokens.size()));
      if (r == 1) allow.penalty_tokens.push_back(allow.banned_tokens[allow.banned_offsets[1]]), allow.penalty_counts.push_back(3);
      allow.penalty_offsets.push_back(static_cast<int32_t>(allow.penalty_tokens.size()));
    }
    allow.bias_offsets = {0, 0, 0, 1, 1};
    allow.bias_tokens = {allow.banned_tokens[allow.banned_offsets[2]]};
    allow.bias_values = {40.0f};
    ban.penalty_offsets = allow.penalty_offsets;
    ban.penalty_tokens = allow.penalty_tokens;
    ban.penalty_counts = allow.penalty_counts;
    ban.bias_offsets = allow.bias_offsets;
    ban.bias_tokens = allow.bias_tokens;
    ban.bias_values = allow.bias_values;
    const SampleResult got = be().sample(dev(logits), allow);
    const std::string what = "allow_only, trial " + std::to_string(trial);
    expect_same(got, ref::sample(logits, allow), allow, what + " vs reference");
    expect_same(got, cpu->sample(logits, allow), allow, what + " vs cpu backend");
    expect_same(got, be().sample(dev(logits), ban), ban, what + " vs the rest banned");
    for (int r = 0; r < R; ++r)
      EXPECT_TRUE(std::binary_search(allow.banned_tokens.begin() + allow.banned_offsets[r],
                                     allow.banned_tokens.begin() + allow.banned_offsets[r + 1], got.tokens[r]))
          << what << " row " << r;
    EXPECT_EQ(got.tokens[2], allow.bias_tokens[0]) << what;
  }
}

TEST_F(CudaSample, CandidateAndRadixPathsAgreeWithReference) {
  // Flat rows (top-p keeps tens of thousands of tokens: the radix-select path), peaked rows
  // (a few candidates near the max) and large k (more candidates than fit the sort buffer).
  std::mt19937_64 rng(95);
  const int V = 151936;
  for (float std : {0.3f, 1.0f, 8.0f}) {
    const int R = 5;
    Tensor logits = random_logits(rng, R, V, std);
    SampleBatch batch;
    batch.rows.resize(R);
    batch.rows[0].top_p = 0.95f;
    batch.rows[1].top_k = 20, batch.rows[1].top_p = 0.8f, batch.rows[1].temperature = 0.7f;
    batch.rows[2].top_k = 5000;
    batch.rows[3].top_p = 0.3f, batch.rows[3].temperature = 0.5f, batch.rows[3].min_p = 0.02f;
    batch.rows[4].top_k = 3, batch.rows[4].temperature = 3.0f;
    for (int r = 0; r < R; ++r) batch.rows[r].seed = 99, batch.rows[r].offset = static_cast<uint64_t>(r * 13);
    SampleResult got = be().sample(dev(logits), batch);
    expect_same(got, ref::sample(logits, batch), batch, "std " + std::to_string(std));
  }
}

TEST_F(CudaSample, DrawsFollowTheDistribution) {
  // Many offsets over a small vocabulary: token frequencies approach softmax probabilities.
  const int V = 8, R = 4000;
  std::vector<float> row = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, -2.0f};
  Tensor logits = Tensor::empty({R, V}, DType::F32);
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < V; ++i) logits.data<float>()[r * V + i] = row[i];
  SampleBatch batch;
  batch.rows.resize(R);
  for (int r = 0; r < R; ++r) batch.rows[r].seed = 7, batch.rows[r].offset = static_cast<uint64_t>(r);
  SampleResult got = be().sample(dev(logits), batch);
  double z = 0;
  for (float l : row) z += std::exp(l);
  std::vector<int> count(V, 0);
  for (int t : got.tokens) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, V);
    ++count[t];
  }
  for (int i = 0; i < V; ++i) {
    const double p = std::exp(row[i]) / z;
    EXPECT_NEAR(count[i] / static_cast<double>(R), p, 4 * std::sqrt(p * (1 - p) / R) + 1e-3) << "token " << i;
  }
}

// Deferred draws on the device: the same tokens and log-probs as sample(), their ids written
// into device tokens where rows say so (2,000 rows: the rows travel in the kernels' launch
// parameters, 960 per launch), the host copy collected later while more work is queued.
TEST_F(CudaSample, DeferredDrawsFeedDeviceTokens) {
  std::mt19937_64 rng(97);
  const int R = 300, V = 1000, N = 2000;
  Tensor logits = random_logits(rng, R, V);
  SampleBatch batch;
  batch.rows.resize(R);
  for (int r = 0; r < R; ++r) {
    batch.rows[r].temperature = r % 2 ? 0.8f : 0.0f;
    batch.rows[r].seed = 1000 + r;
    batch.rows[r].num_top_logprobs = r % 3;
  }
  Tensor dl = dev(logits);
  const SampleResult want = be().sample(dl, batch);
  const int t = be().sample_deferred(dl, batch);
  std::vector<int32_t> init(N), rows(N);
  for (int i = 0; i < N; ++i) {
    init[i] = -5 - i;
    rows[i] = (i % 7 == 3) ? -1 : static_cast<int32_t>(rng() % R);
  }
  Tensor tokens = dev(Tensor::wrap(init.data(), {N}, DType::I32, Device::CPU));
  be().feed_tokens(tokens, rows, t);
  Tensor other = be().empty({R, V}, DType::F32);  // more work queued behind the draw
  be().copy(other, dl);
  const SampleResult got = be().collect_sample(t);
  expect_same(got, want, batch, "deferred");
  Tensor back = host(tokens);
  for (int i = 0; i < N; ++i)
    ASSERT_EQ(back.data<int32_t>()[i], rows[i] < 0 ? init[i] : want.tokens[rows[i]]) << "token " << i;
  // A batch refused after the draw slot was picked (a bad row) takes no ticket.
  SampleBatch bad = batch;
  bad.rows[R - 1].temperature = -1.0f;
  EXPECT_THROW(be().sample_deferred(dl, bad), InvalidArgument);
  const int t3 = be().sample_deferred(dl, batch), t4 = be().sample_deferred(dl, batch);
  EXPECT_EQ(be().collect_sample(t3).tokens, want.tokens);
  EXPECT_EQ(be().collect_sample(t4).tokens, want.tokens);
}

// Rows whose logits hold no finite value (all NaN, all -inf, both), greedy and sampled with
// each keep rule, and the row with one finite logit among NaNs: the CPU backend's tokens
// (token 0, and the finite one), at a vocabulary of a vector, of a few blocks and Qwen's.
TEST_F(CudaSample, RowsWithoutAFiniteLogitDrawWhatTheCpuDraws) {
  auto cpu = make_cpu_backend();
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (int V : {7, 1000, 151936}) {
    Tensor logits = Tensor::empty({4, V}, DType::F32);
    float* d = logits.data<float>();
    for (int i = 0; i < V; ++i) {
      d[i] = nan;
      d[V + i] = -inf;
      d[2 * V + i] = i % 2 ? nan : -inf;
      d[3 * V + i] = nan;
    }
    d[3 * V + V - 2] = 0.5f;
    for (int mode = 0; mode < 5; ++mode) {
      SamplingRow row;
      row.temperature = mode == 0 ? 0.0f : 1.0f;
      row.seed = 5;
      if (mode == 2) row.top_k = 3;
      if (mode == 3) row.top_p = 0.5f;
      if (mode == 4) row.min_p = 0.2f;
      SampleBatch batch;
      batch.rows.assign(4, row);
      const SampleResult want = cpu->sample(logits, batch);
      ASSERT_EQ(want.tokens, (std::vector<int32_t>{0, 0, 0, V - 2})) << "V=" << V << " mode " << mode;
      const SampleResult got = be().sample(dev(logits), batch);
      EXPECT_EQ(got.tokens, want.tokens) << "V=" << V << " mode " << mode;
    }
  }
}

TEST_F(CudaSample, RejectsBadBatches) {
  std::mt19937_64 rng(93);
  Tensor logits = dev(random_logits(rng, 2, 100));
  SampleBatch batch;
  batch.rows.resize(1);
  EXPECT_THROW(be().sample(logits, batch), InvalidArgument);
  batch.rows.resize(2);
  batch.banned_offsets = {0, 1, 1};
  batch.banned_tokens = {100};
  EXPECT_THROW(be().sample(logits, batch), InvalidArgument);
  batch.banned_offsets.clear();
  batch.banned_tokens.clear();
  batch.bias_offsets = {0, 2, 2};
  batch.bias_tokens = {5, 5};  // a token twice in a row: the kernel adds a row's biases in parallel
  batch.bias_values = {1.0f, 1.0f};
  EXPECT_THROW(be().sample(logits, batch), InvalidArgument);
}

TEST_F(CudaSample, LogSoftmaxMatchesReference) {
  std::mt19937_64 rng(94);
  for (int V : {151936, 1000, 7}) {
    Tensor logits = random_logits(rng, 3, V, 5.0f);
    Tensor got = be().log_softmax_to_host(dev(logits));
    Tensor want = ref::log_softmax(logits);
    EXPECT_LT(max_abs_diff(got, want), 1e-4) << "V=" << V;
  }
}

}  // namespace
}  // namespace tllm::test
