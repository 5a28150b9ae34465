// SwiGLU activation: out[t, :] = silu(gate_up[t, :I]) * gate_up[t, I:].
#include <cmath>

#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

namespace scalar {
void silu_mul_row(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}
}  // namespace scalar

void silu_mul(float* out, const float* gate_up, int64_t T, int64_t inter, const Exec& ex) {
  const auto row = isa_kernel(ex.isa, silu_mul_row);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(inter, 1));
  if (T == 1) {  // decode: split the one row so both cores work
    ex.pool.parallel_for(inter, 1024, [&](int64_t b, int64_t e) {
      row(out + b, gate_up + b, gate_up + inter + b, e - b);
    });
    return;
  }
  ex.pool.parallel_for(T, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float* g = gate_up + t * 2 * inter;
      row(out + t * inter, g, g + inter, inter);
    }
  });
}

}  // namespace tllm::cpu
