// Sampling of one token per logits row: logit biases (first, as vLLM applies them), then in the
// order HF generate applies its processors: penalties (repetition, presence, frequency) and
// banned tokens, then temperature, top-k, top-p, min-p, then the exponential race
// argmax_i p_i / E_i with E_i = -log(u_i) and u_i = sampling_uniform(seed, offset, i), which
// draws i with probability p_i and gives the same token for the same seed on every backend.
// temperature == 0 is greedy (lowest id on ties). Log-probs are the raw log-softmax of the
// logits, before any processing.
//
// top-k keeps every token whose logit ties the k-th largest (as HF's TopKLogitsWarper);
// the k-th value comes from one pass with a k-entry sorted list, no sort of the
// vocabulary. top-p keeps the smallest prefix of the sorted kept set whose probability
// reaches top_p (HF TopPLogitsWarper: token j stays iff the mass before it is < top_p);
// without top-k it collects the tokens within C of the max logit, doubling C until their
// mass reaches top_p, and sorts only those. min-p drops tokens with p < min_p * p_max
// (HF MinPLogitsWarper). At least one token always survives.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct RowScratch {
  std::vector<float> w;    // [V] processed logits
  std::vector<float> s;    // [V] w / temperature
  std::vector<float> e;    // [V] exp(s - s_max)
  std::vector<int32_t> cand;
  std::vector<int32_t> bucket;
};

bool has_csr(const std::vector<int32_t>& offsets) { return !offsets.empty(); }

// Processed logits of row r: raw, NaN -> -inf, logit biases, penalties, banned tokens (or, for
// an allow_only row, every token but the listed ones).
void process_logits(const float* x, int64_t V, const SampleBatch& batch, int64_t r, std::vector<float>& w) {
  w.assign(x, x + V);
  for (float& v : w)
    if (std::isnan(v)) v = kNegInf;
  const SamplingRow& row = batch.rows[r];
  if (has_csr(batch.bias_offsets)) {
    for (int32_t j = batch.bias_offsets[r]; j < batch.bias_offsets[r + 1]; ++j)
      w[batch.bias_tokens[j]] += batch.bias_values[j];
  }
  if (has_csr(batch.penalty_offsets)) {
    const int32_t b = batch.penalty_offsets[r], e = batch.penalty_offsets[r + 1];
    // Duplicate ids count once for the repetition penalty and sum their counts.
    std::vector<std::pair<int32_t, int64_t>> toks;
    toks.reserve(static_cast<size_t>(e - b));
    for (int32_t j = b; j < e; ++j) toks.emplace_back(batch.penalty_tokens[j], batch.penalty_counts[j]);
    std::sort(toks.begin(), toks.end());
    for (size_t j = 0; j < toks.size();) {
      const int32_t tok = toks[j].first;
      int64_t count = 0;
      for (; j < toks.size() && toks[j].first == tok; ++j) count += toks[j].second;
      float v = w[tok];
      if (row.repetition_penalty != 1.0f) v = v > 0.0f ? v / row.repetition_penalty : v * row.repetition_penalty;
      if (count > 0) v -= row.presence_penalty;
      v -= row.frequency_penalty * static_cast<float>(count);
      w[tok] = v;
    }
  }
  if (row.allow_only) {
    std::vector<std::pair<int32_t, float>> keep;
    if (has_csr(batch.banned_offsets))
      for (int32_t j = batch.banned_offsets[r]; j < batch.banned_offsets[r + 1]; ++j)
        keep.emplace_back(batch.banned_tokens[j], w[batch.banned_tokens[j]]);
    std::fill(w.begin(), w.end(), kNegInf);
    for (const auto& [tok, v] : keep) w[tok] = v;
  } else if (has_csr(batch.banned_offsets)) {
    for (int32_t j = batch.banned_offsets[r]; j < batch.banned_offsets[r + 1]; ++j) w[batch.banned_tokens[j]] = kNegInf;
  }
}

// First index of m = max_row(w) (NaN never wins: max_row skips it and NaN >= m is false);
// 0 when every value is NaN or -inf.
int32_t index_of_max(const float* w, int64_t V, float m, const Exec& ex) {
  if (m == kNegInf) return 0;
  const int64_t i = isa_kernel(ex.isa, first_at_least_row)(w, V, m);
  return i < V ? static_cast<int32_t>(i) : 0;
}

// First index of the largest value.
int32_t argmax_lowest(const float* w, int64_t V, const Exec& ex) {
  return index_of_max(w, V, isa_kernel(ex.isa, max_row)(w, V), ex);
}

// The n best entries of v (larger value first, lower id on ties), NaN skipped and -inf
// too when finite_only. One pass; blocks whose maximum cannot enter the list are skipped.
std::vector<int32_t> best_ids(const float* v, int64_t V, int64_t n, bool finite_only) {
  std::vector<int32_t> best;
  n = std::min(n, V);
  if (n <= 0) return best;
  best.reserve(static_cast<size_t>(n) + 1);
  float worst = kNegInf;  // value of best.back() once the list is full
  bool full = false;
  constexpr int64_t kBlock = 64;
  for (int64_t b = 0; b < V; b += kBlock) {
    const int64_t e = std::min(V, b + kBlock);
    if (full) {
      float bm = kNegInf;
      for (int64_t i = b; i < e; ++i) bm = v[i] > bm ? v[i] : bm;
      if (!(bm > worst)) continue;  // ids only grow, so a tie with the worst never enters
    }
    for (int64_t i = b; i < e; ++i) {
      const float x = v[i];
      if (std::isnan(x) || (finite_only && x == kNegInf)) continue;
      if (full && !(x > worst)) continue;
      // After every entry with a value >= x (they all have lower ids).
      auto pos = std::upper_bound(best.begin(), best.end(), x, [&](float val, int32_t id) { return val > v[id]; });
      best.insert(pos, static_cast<int32_t>(i));
      if (static_cast<int64_t>(best.size()) > n) best.pop_back();
      full = static_cast<int64_t>(best.size()) == n;
      if (full) worst = v[best.back()];
    }
  }
  return best;
}

// The kept set of a sampling (temperature > 0) row. When no filter is on, every token
// with a finite logit is kept and `all` is set instead of listing them in `cand`.
struct KeepSet {
  bool all = false;
  float wmax = kNegInf;  // largest kept processed logit
};

// top-p over the whole vocabulary without sorting it: a histogram of the probability
// mass by distance below the max logit (kBucketsPerUnit buckets per unit of s) finds the
// bucket where the cumulative mass crosses top_p; every token above it is kept (the mass
// before each of them is below the target) and only that bucket's tokens are sorted.
void top_p_all(const float* w, int64_t V, const SamplingRow& row, float smax, RowScratch& rs, const Exec& ex) {
  constexpr float kBucketsPerUnit = 16.0f;
  constexpr int kBuckets = 1024;  // the last one takes everything further than 64 below the max
  const float inv_t = 1.0f / row.temperature;
  rs.s.resize(static_cast<size_t>(V));
  rs.e.resize(static_cast<size_t>(V));
  rs.bucket.resize(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) rs.s[i] = w[i] * inv_t;
  const double z = isa_kernel(ex.isa, exp_row)(rs.e.data(), rs.s.data(), V, smax);
  const double target = static_cast<double>(row.top_p) * z;
  std::vector<double> mass(kBuckets, 0.0);
  for (int64_t i = 0; i < V; ++i) {
    if (!(rs.s[i] > kNegInf)) {
      rs.bucket[i] = kBuckets;  // never kept
      continue;
    }
    const float dist = (smax - rs.s[i]) * kBucketsPerUnit;
    const int b = dist < static_cast<float>(kBuckets - 1) ? static_cast<int>(dist) : kBuckets - 1;
    rs.bucket[i] = b;
    mass[b] += rs.e[i];
  }
  int cross = 0;
  double above = 0.0;
  while (cross < kBuckets - 1 && above + mass[cross] < target) above += mass[cross++];
  std::vector<int32_t>& cand = rs.cand;
  cand.clear();
  std::vector<int32_t> edge;
  for (int64_t i = 0; i < V; ++i) {
    if (rs.bucket[i] < cross) cand.push_back(static_cast<int32_t>(i));
    else if (rs.bucket[i] == cross) edge.push_back(static_cast<int32_t>(i));
  }
  std::sort(edge.begin(), edge.end(), [&](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); });
  double cum = above;
  for (size_t j = 0; j < edge.size() && (cand.empty() || cum < target); ++j) {
    cand.push_back(edge[j]);
    cum += rs.e[edge[j]];
  }
}

KeepSet keep_set(const float* w, int64_t V, const SamplingRow& row, RowScratch& rs, const Exec& ex) {
  std::vector<int32_t>& cand = rs.cand;
  cand.clear();
  // Larger logit first, then lower id.
  auto before = [&](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
  KeepSet ks;
  ks.wmax = isa_kernel(ex.isa, max_row)(w, V);
  if (ks.wmax == kNegInf) {  // everything banned: fall back to the greedy choice
    cand.push_back(argmax_lowest(w, V, ex));
    return ks;
  }
  const float inv_t = 1.0f / row.temperature;
  const float smax = ks.wmax * inv_t;
  auto e_of = [&](int32_t i) { return std::exp(w[i] * inv_t - smax); };

  ks.all = true;
  if (row.top_k > 0 && row.top_k < V) {
    const std::vector<int32_t> top = best_ids(w, V, row.top_k, /*finite_only=*/true);
    if (static_cast<int64_t>(top.size()) == row.top_k) {  // fewer finite tokens: all stay
      const float kth = w[top.back()];
      for (int64_t i = 0; i < V; ++i)
        if (w[i] >= kth) cand.push_back(static_cast<int32_t>(i));  // HF keeps ties of the k-th value
      std::sort(cand.begin(), cand.end(), before);
      ks.all = false;
    }
  }

  if (row.top_p < 1.0f) {
    if (ks.all) {
      top_p_all(w, V, row, smax, rs, ex);
    } else {
      double z = 0.0;
      for (int32_t i : cand) z += e_of(i);
      const double target = static_cast<double>(row.top_p) * z;
      double cum = 0.0;
      size_t keep = 0;
      while (keep < cand.size() && (keep == 0 || cum < target)) cum += e_of(cand[keep++]);
      cand.resize(keep);
    }
    ks.all = false;
  }
  if (row.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  exp(s_i - s_max) >= min_p; a loose logit bound first.
    const float lo = std::log(row.min_p) - 1e-3f;
    auto drop = [&](int32_t i) { return !(w[i] * inv_t - smax >= lo && e_of(i) >= row.min_p); };
    if (ks.all) {
      for (int64_t i = 0; i < V; ++i)
        if (w[i] > kNegInf && !drop(static_cast<int32_t>(i))) cand.push_back(static_cast<int32_t>(i));
      ks.all = false;
    } else {
      cand.erase(std::remove_if(cand.begin(), cand.end(), drop), cand.end());
    }
    if (cand.empty()) cand.push_back(argmax_lowest(w, V, ex));  // keeps at least the top token
  }
  return ks;
}

// The exponential race over the kept set: argmax p_i / E_i, E_i = -log(u_i), lowest id on
// ties. Most tokens are ruled out without the log: key_i <= p_i / E_min with
// E_min = -log(the largest u below 1) (a bound on the logit alone), and E_i >= 1 - u_i.
// (u == 1 can come out of sampling_uniform's float rounding; such tokens take the exact
// path.)
int32_t draw(const float* w, int64_t V, const SamplingRow& row, const KeepSet& ks, const std::vector<int32_t>& cand,
             const Exec& ex) {
  const float inv_t = 1.0f / row.temperature;
  const float smax = ks.wmax * inv_t;
  static const float log_e_min = std::log(-std::log(std::nextafter(1.0f, 0.0f)));
  int32_t best = -1;
  float best_key = -1.0f;
  float log_thr = kNegInf;  // skip when s_i - s_max < log_thr
  auto visit = [&](int32_t i) {
    const float d = w[i] * inv_t - smax;
    const float u = sampling_uniform(row.seed, row.offset, static_cast<uint32_t>(i));
    float p;
    if (u < 1.0f) {
      if (d < log_thr) return;
      p = std::exp(d);
      if (p < best_key * (1.0f - u) * 0.999f) return;
    } else {
      p = std::exp(d);
    }
    const float key = p / -std::log(u);
    if (key > best_key || (key == best_key && i < best)) {
      best_key = key;
      best = i;
      log_thr = best_key > 0.0f ? std::log(best_key) + log_e_min - 1e-3f : kNegInf;
    }
  };
  if (ks.all) {
    visit(argmax_lowest(w, V, ex));  // a large key early makes the bounds bite
    for (int64_t i = 0; i < V; ++i)
      if (w[i] > kNegInf) visit(static_cast<int32_t>(i));
  } else {
    for (int32_t i : cand) visit(i);
  }
  // No weight above -inf (the row's logits were all NaN or -inf): greedy's choice, token 0.
  return best >= 0 ? best : argmax_lowest(w, V, ex);
}

// The n largest raw logits, most likely first, ties by lower id.
std::vector<std::pair<int32_t, float>> top_n(const float* x, int64_t V, int n, float lse) {
  std::vector<std::pair<int32_t, float>> out;
  for (int32_t id : best_ids(x, V, n, /*finite_only=*/false)) out.emplace_back(id, x[id] - lse);
  return out;
}

}  // namespace

std::vector<int32_t> sample_keep_set(const float* logits_row, int64_t vocab, const SampleBatch& batch,
                                     int64_t r) {
  RowScratch rs;
  process_logits(logits_row, vocab, batch, r, rs.w);
  const SamplingRow& row = batch.rows[r];
  ThreadPool pool(1);
  Scratch scratch;
  const Exec ex{pool, best_isa(), scratch};
  if (row.temperature == 0.0f) return {argmax_lowest(rs.w.data(), vocab, ex)};
  const KeepSet ks = keep_set(rs.w.data(), vocab, row, rs, ex);
  if (ks.all) {
    rs.cand.clear();
    for (int64_t i = 0; i < vocab; ++i)
      if (rs.w[i] > kNegInf) rs.cand.push_back(static_cast<int32_t>(i));
  }
  std::sort(rs.cand.begin(), rs.cand.end());
  return rs.cand;
}

SampleResult sample(const float* logits, int64_t rows, int64_t vocab, const SampleBatch& batch,
                    const Exec& ex) {
  check_sample_batch(batch, rows, vocab);
  SampleResult res;
  res.tokens.resize(static_cast<size_t>(rows));
  res.logprobs.resize(static_cast<size_t>(rows));
  res.top_logprobs.resize(static_cast<size_t>(rows));
  const auto row_max = isa_kernel(ex.isa, max_row);
  const auto row_sum_exp = isa_kernel(ex.isa, sum_exp_row);
  std::vector<RowScratch> scratch(static_cast<size_t>(ex.pool.size()));
  ex.pool.parallel_for_dynamic(rows, [&](int64_t r, int thread) {
    const float* x = logits + r * vocab;
    const SamplingRow& row = batch.rows[r];
    RowScratch& rs = scratch[thread];
    const float m = row_max(x, vocab);
    const float lse = m + static_cast<float>(std::log(row_sum_exp(x, vocab, m)));
    int32_t tok;
    const bool raw = !has_csr(batch.penalty_offsets) && !has_csr(batch.banned_offsets) && !has_csr(batch.bias_offsets) &&
                     !row.allow_only;
    if (row.temperature == 0.0f && raw) {
      // The processed logits would be x with NaN -> -inf: its maximum is m, found above.
      tok = index_of_max(x, vocab, m, ex);
    } else {
      process_logits(x, vocab, batch, r, rs.w);
      if (row.temperature == 0.0f) {
        tok = argmax_lowest(rs.w.data(), vocab, ex);
      } else {
        const KeepSet ks = keep_set(rs.w.data(), vocab, row, rs, ex);
        tok = draw(rs.w.data(), vocab, row, ks, rs.cand, ex);
      }
    }
    res.tokens[r] = tok;
    res.logprobs[r] = x[tok] - lse;
    if (row.num_top_logprobs > 0) res.top_logprobs[r] = top_n(x, vocab, row.num_top_logprobs, lse);
  });
  return res;
}

}  // namespace tllm::cpu
