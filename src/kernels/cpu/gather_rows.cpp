// out[i, :] = x[indices[i], :] (selecting the rows whose logits are wanted).
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu_ops.h"

namespace tllm::cpu {

void gather_rows(void* out, const void* x, int64_t row_bytes, const int64_t* indices, int64_t n,
                 const Exec& ex) {
  const int64_t grain = std::max<int64_t>(1, (64 << 10) / std::max<int64_t>(row_bytes, 1));
  ex.pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      std::memcpy(static_cast<char*>(out) + i * row_bytes,
                  static_cast<const char*>(x) + indices[i] * row_bytes, static_cast<size_t>(row_bytes));
    }
  });
}

}  // namespace tllm::cpu
