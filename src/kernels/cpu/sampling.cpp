// Sampling of one token per logits row, in the order HF generate applies its processors:
// penalties (repetition, presence, frequency) and banned tokens, then temperature, top-k,
// top-p, min-p, then the exponential race argmax_i p_i / E_i with E_i = -log(u_i) and
// u_i = sampling_uniform(seed, offset, i), which draws i with probability p_i and gives the
// same token for the same seed on every backend. temperature == 0 is greedy (lowest id on
// ties). Log-probs are the raw log-softmax of the logits, before any processing.
//
// top-k keeps every token whose logit ties the k-th largest (as HF's TopKLogitsWarper);
// selection uses nth_element, not a sort of the vocabulary. top-p keeps the smallest
// prefix of the sorted kept set whose probability reaches top_p (HF TopPLogitsWarper:
// token j stays iff the mass before it is < top_p); it sorts only a growing prefix.
// min-p drops tokens with p < min_p * p_max (HF MinPLogitsWarper). At least one token
// always survives.
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
  std::vector<float> w;     // [V] processed logits
  std::vector<float> tmp;   // [V] for selection
  std::vector<int32_t> cand;
};

bool has_csr(const std::vector<int32_t>& offsets) { return !offsets.empty(); }

// Processed logits of row r: raw, NaN -> -inf, penalties, banned tokens.
void process_logits(const float* x, int64_t V, const SampleBatch& batch, int64_t r, std::vector<float>& w) {
  w.assign(x, x + V);
  for (float& v : w)
    if (std::isnan(v)) v = kNegInf;
  const SamplingRow& row = batch.rows[r];
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
  if (has_csr(batch.banned_offsets)) {
    for (int32_t j = batch.banned_offsets[r]; j < batch.banned_offsets[r + 1]; ++j) w[batch.banned_tokens[j]] = kNegInf;
  }
}

int32_t argmax_lowest(const float* w, int64_t V) {
  int32_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (w[i] > w[best]) best = static_cast<int32_t>(i);
  return best;
}

// Fills `cand` with the kept ids (any order) for a sampling (temperature > 0) row.
// Returns the largest kept processed logit.
float keep_set(const float* w, int64_t V, const SamplingRow& row, RowScratch& rs) {
  std::vector<int32_t>& cand = rs.cand;
  cand.clear();
  if (row.top_k > 0 && row.top_k < V) {
    rs.tmp.assign(w, w + V);
    std::nth_element(rs.tmp.begin(), rs.tmp.begin() + (row.top_k - 1), rs.tmp.end(), std::greater<float>());
    const float thr = rs.tmp[row.top_k - 1];
    for (int64_t i = 0; i < V; ++i)
      if (w[i] >= thr && w[i] > kNegInf) cand.push_back(static_cast<int32_t>(i));
  } else {
    for (int64_t i = 0; i < V; ++i)
      if (w[i] > kNegInf) cand.push_back(static_cast<int32_t>(i));
  }
  if (cand.empty()) {  // everything banned: fall back to the greedy choice
    cand.push_back(argmax_lowest(w, V));
    return w[cand[0]];
  }
  float wmax = kNegInf;
  for (int32_t i : cand) wmax = std::max(wmax, w[i]);
  const float inv_t = 1.0f / row.temperature;
  const float smax = wmax * inv_t;
  auto e_of = [&](int32_t i) { return std::exp(w[i] * inv_t - smax); };
  // Larger logit first, then lower id.
  auto before = [&](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };

  if (row.top_p < 1.0f && cand.size() > 1) {
    double z = 0.0;
    for (int32_t i : cand) z += e_of(i);
    const double target = static_cast<double>(row.top_p) * z;
    size_t m = std::min<size_t>(cand.size(), 512);
    for (;;) {
      if (m < cand.size()) std::nth_element(cand.begin(), cand.begin() + m, cand.end(), before);
      std::sort(cand.begin(), cand.begin() + m, before);
      double cum = 0.0;
      size_t keep = 0;
      while (keep < m && (keep == 0 || cum < target)) cum += e_of(cand[keep++]);
      if (keep < m || m == cand.size() || cum >= target) {
        cand.resize(keep);
        break;
      }
      m = std::min(cand.size(), m * 8);
    }
  }
  if (row.min_p > 0.0f) {
    const size_t before_n = cand.size();
    int32_t top = cand[0];
    for (int32_t i : cand)
      if (before(i, top)) top = i;
    cand.erase(std::remove_if(cand.begin(), cand.end(), [&](int32_t i) { return e_of(i) < row.min_p; }),
               cand.end());
    if (cand.empty() && before_n > 0) cand.push_back(top);
  }
  return wmax;
}

int32_t draw(const float* w, const SamplingRow& row, float wmax, const std::vector<int32_t>& cand) {
  const float inv_t = 1.0f / row.temperature;
  const float smax = wmax * inv_t;
  int32_t best = -1;
  float best_key = -1.0f;
  for (int32_t i : cand) {
    const float p = std::exp(w[i] * inv_t - smax);
    const float u = sampling_uniform(row.seed, row.offset, static_cast<uint32_t>(i));
    const float key = p / -std::log(u);
    if (key > best_key || (key == best_key && i < best)) {
      best_key = key;
      best = i;
    }
  }
  return best;
}

// The n largest raw logits, most likely first, ties by lower id.
std::vector<std::pair<int32_t, float>> top_n(const float* x, int64_t V, int n, float lse) {
  n = static_cast<int>(std::min<int64_t>(n, V));
  std::vector<int32_t> best;  // sorted, best first
  best.reserve(static_cast<size_t>(n) + 1);
  auto better = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  for (int64_t i = 0; i < V && n > 0; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    if (std::isnan(x[i])) continue;
    if (static_cast<int>(best.size()) == n && !better(id, best.back())) continue;
    auto pos = std::upper_bound(best.begin(), best.end(), id, better);
    best.insert(pos, id);
    if (static_cast<int>(best.size()) > n) best.pop_back();
  }
  std::vector<std::pair<int32_t, float>> out;
  out.reserve(best.size());
  for (int32_t id : best) out.emplace_back(id, x[id] - lse);
  return out;
}

void check_csr(const std::vector<int32_t>& offsets, const std::vector<int32_t>& tokens, int64_t rows,
               int64_t vocab, const char* what) {
  if (offsets.empty()) return;
  TLLM_CHECK_ARG(static_cast<int64_t>(offsets.size()) == rows + 1, "sample: ", what, "_offsets has ",
                 offsets.size(), " entries, expected rows + 1 = ", rows + 1);
  TLLM_CHECK_ARG(offsets[0] == 0 && offsets[rows] == static_cast<int32_t>(tokens.size()), "sample: ", what,
                 "_offsets must run from 0 to ", tokens.size());
  for (int64_t r = 0; r < rows; ++r)
    TLLM_CHECK_ARG(offsets[r] <= offsets[r + 1], "sample: ", what, "_offsets decreases at row ", r);
  for (int32_t t : tokens)
    TLLM_CHECK_ARG(t >= 0 && t < vocab, "sample: ", what, " token id ", t, " outside the vocabulary [0, ",
                   vocab, ")");
}

void check_batch(const SampleBatch& batch, int64_t rows, int64_t vocab) {
  TLLM_CHECK_ARG(static_cast<int64_t>(batch.rows.size()) == rows, "sample: ", batch.rows.size(),
                 " sampling rows for ", rows, " rows of logits");
  TLLM_CHECK_ARG(vocab > 0, "sample: empty vocabulary");
  check_csr(batch.penalty_offsets, batch.penalty_tokens, rows, vocab, "penalty");
  TLLM_CHECK_ARG(batch.penalty_counts.size() == batch.penalty_tokens.size(), "sample: penalty_counts has ",
                 batch.penalty_counts.size(), " entries for ", batch.penalty_tokens.size(), " penalty tokens");
  check_csr(batch.banned_offsets, batch.banned_tokens, rows, vocab, "banned");
  for (int64_t r = 0; r < rows; ++r) {
    const SamplingRow& row = batch.rows[r];
    TLLM_CHECK_ARG(row.temperature >= 0.0f && std::isfinite(row.temperature), "sample: row ", r,
                   " temperature ", row.temperature, " must be >= 0");
    TLLM_CHECK_ARG(row.repetition_penalty > 0.0f, "sample: row ", r, " repetition_penalty ",
                   row.repetition_penalty, " must be > 0");
    TLLM_CHECK_ARG(row.num_top_logprobs >= 0, "sample: row ", r, " num_top_logprobs ", row.num_top_logprobs,
                   " must be >= 0");
  }
}

}  // namespace

std::vector<int32_t> sample_keep_set(const float* logits_row, int64_t vocab, const SampleBatch& batch,
                                     int64_t r) {
  RowScratch rs;
  process_logits(logits_row, vocab, batch, r, rs.w);
  const SamplingRow& row = batch.rows[r];
  if (row.temperature == 0.0f) return {argmax_lowest(rs.w.data(), vocab)};
  keep_set(rs.w.data(), vocab, row, rs);
  std::sort(rs.cand.begin(), rs.cand.end());
  return rs.cand;
}

SampleResult sample(const float* logits, int64_t rows, int64_t vocab, const SampleBatch& batch,
                    const Exec& ex) {
  check_batch(batch, rows, vocab);
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
    process_logits(x, vocab, batch, r, rs.w);
    int32_t tok;
    if (row.temperature == 0.0f) {
      tok = argmax_lowest(rs.w.data(), vocab);
    } else {
      const float wmax = keep_set(rs.w.data(), vocab, row, rs);
      tok = draw(rs.w.data(), row, wmax, rs.cand);
    }
    res.tokens[r] = tok;
    res.logprobs[r] = x[tok] - lse;
    if (row.num_top_logprobs > 0) res.top_logprobs[r] = top_n(x, vocab, row.num_top_logprobs, lse);
  });
  return res;
}

}  // namespace tllm::cpu
