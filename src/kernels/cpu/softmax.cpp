// Row-wise log-softmax (prompt log-probs, sampled-token log-probs); scalar row helpers.
#include <cmath>
#include <algorithm>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

namespace scalar {
float max_row(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

int64_t first_at_least_row(const float* x, int64_t n, float v) {
  for (int64_t i = 0; i < n; ++i)
    if (x[i] >= v) return i;
  return n;
}

double sum_exp_row(const float* x, int64_t n, float shift) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - shift));
  return s;
}
double exp_row(float* out, const float* x, int64_t n, float shift) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += (out[i] = std::exp(x[i] - shift));
  return s;
}
}  // namespace scalar

void log_softmax(float* out, const float* logits, int64_t rows, int64_t vocab, const Exec& ex) {
  const auto row_max = isa_kernel(ex.isa, max_row);
  const auto row_sum_exp = isa_kernel(ex.isa, sum_exp_row);
  auto one_row = [&](int64_t r, int64_t b, int64_t e, float* mx, double* se) {
    const float* x = logits + r * vocab;
    *mx = row_max(x + b, e - b);
    *se = row_sum_exp(x + b, e - b, *mx);
  };
  auto finish = [&](int64_t r, float m, double s, int64_t b, int64_t e) {
    const float* x = logits + r * vocab;
    float* o = out + r * vocab;
    const float lse = m + static_cast<float>(std::log(s));
    for (int64_t i = b; i < e; ++i) o[i] = x[i] - lse;
  };
  if (rows >= ex.pool.size()) {
    ex.pool.parallel_for(rows, 1, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        float m;
        double s;
        one_row(r, 0, vocab, &m, &s);
        finish(r, m, s, 0, vocab);
      }
    });
    return;
  }
  // Few rows (decode): split each row over the threads, then combine (max, sum) pairs.
  const int nt = ex.pool.size();
  std::vector<float> maxes(static_cast<size_t>(nt));
  std::vector<double> sums(static_cast<size_t>(nt));
  for (int64_t r = 0; r < rows; ++r) {
    ex.pool.run([&](int t, int n) {
      const int64_t b = vocab * t / n, e = vocab * (t + 1) / n;
      if (b < e) {
        one_row(r, b, e, &maxes[t], &sums[t]);
      } else {
        maxes[t] = -std::numeric_limits<float>::infinity();
        sums[t] = 0.0;
      }
    });
    float m = -std::numeric_limits<float>::infinity();
    for (int t = 0; t < nt; ++t) m = std::max(m, maxes[t]);
    double s = 0.0;
    for (int t = 0; t < nt; ++t)
      if (sums[t] > 0.0) s += sums[t] * std::exp(static_cast<double>(maxes[t]) - m);
    ex.pool.parallel_for(vocab, 4096, [&](int64_t b, int64_t e) { finish(r, m, s, b, e); });
  }
}

}  // namespace tllm::cpu
