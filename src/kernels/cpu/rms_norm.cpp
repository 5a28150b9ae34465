// RMSNorm (and the fused residual add + RMSNorm) over rows; scalar variant and driver.
#include <cmath>

#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

namespace scalar {

void rms_norm_row(float* out, const float* x, const float* w, int64_t n, float eps) {
  float ss = 0.0f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
}

void add_rms_norm_row(float* residual, const float* x, float* out, const float* w, int64_t n,
                      float eps) {
  for (int64_t i = 0; i < n; ++i) residual[i] += x[i];
  rms_norm_row(out, residual, w, n, eps);
}

}  // namespace scalar

void rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t dim,
              float eps, const Exec& ex) {
  const auto row = isa_kernel(ex.isa, rms_norm_row);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1));
  ex.pool.parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) row(out + r * dim, x + r * dim, weight, dim, eps);
  });
}

void add_rms_norm(float* residual, const float* x, float* out, const float* weight, int64_t rows,
                  int64_t dim, float eps, const Exec& ex) {
  const auto row = isa_kernel(ex.isa, add_rms_norm_row);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1));
  ex.pool.parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) row(residual + r * dim, x + r * dim, out + r * dim, weight, dim, eps);
  });
}

}  // namespace tllm::cpu
