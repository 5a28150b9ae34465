// linear: out[T, N] = x[T, K] @ W[N, K]^T (+ bias), W in f32 / bf16 / f16 converted in
// registers, f32 products and sums. The driver lays the activations out once for the
// ISA kernel (zero-padded rows; permuted per block for bf16 weights, see
// avx512/linear_avx512.cpp) and splits the output columns over the threads.
#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

namespace scalar {

int64_t linear_padded_k(int64_t K) { return K; }

void linear_prepare_x(const float* x, int64_t K, float* xp, int64_t kp, DType) {
  std::memcpy(xp, x, static_cast<size_t>(K) * sizeof(float));
  for (int64_t k = K; k < kp; ++k) xp[k] = 0.0f;
}

namespace {
template <typename Load>
void linear_block_impl(const LinearTask& t, int64_t n_begin, int64_t n_end, Load load) {
  for (int64_t n = n_begin; n < n_end; ++n) {
    const float b = t.bias ? t.bias[n] : 0.0f;
    for (int64_t r = 0; r < t.T; ++r) {
      const float* x = t.x + r * t.kp;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 8 <= t.K; k += 8)
        for (int j = 0; j < 8; ++j) acc[j] += x[k + j] * load(n * t.K + k + j);
      for (; k < t.K; ++k) acc[0] += x[k] * load(n * t.K + k);
      const float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      t.out[r * t.N + n] = s + b;
    }
  }
}
}  // namespace

void linear_block(const LinearTask& t, int64_t n_begin, int64_t n_end) {
  if (t.w_dtype == DType::F32) {
    const float* w = static_cast<const float*>(t.w);
    linear_block_impl(t, n_begin, n_end, [w](int64_t i) { return w[i]; });
  } else if (t.w_dtype == DType::BF16) {
    const uint16_t* w = static_cast<const uint16_t*>(t.w);
    linear_block_impl(t, n_begin, n_end, [w](int64_t i) { return bf16_to_f32(w[i]); });
  } else {
    const uint16_t* w = static_cast<const uint16_t*>(t.w);
    linear_block_impl(t, n_begin, n_end, [w](int64_t i) { return f16_to_f32(w[i]); });
  }
}

}  // namespace scalar

void linear(float* out, const float* x, const void* w, DType w_dtype, const float* bias, int64_t T,
            int64_t N, int64_t K, const Exec& ex) {
  TLLM_CHECK(w_dtype == DType::F32 || w_dtype == DType::BF16 || w_dtype == DType::F16,
             "linear: weight dtype ", dtype_name(w_dtype), " unsupported (f32, bf16, f16)");
  if (T <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t r = 0; r < T; ++r)
      for (int64_t n = 0; n < N; ++n) out[r * N + n] = bias ? bias[n] : 0.0f;
    return;
  }
  const int64_t kp = isa_kernel(ex.isa, linear_padded_k)(K);
  float* xp = ex.scratch.floats(static_cast<size_t>(T * kp));
  const auto prepare = isa_kernel(ex.isa, linear_prepare_x);
  ex.pool.parallel_for(T, std::max<int64_t>(1, 32768 / kp), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) prepare(x + r * K, K, xp + r * kp, kp, w_dtype);
  });

  LinearTask task;
  task.x = xp;
  task.kp = kp;
  task.w = w;
  task.w_dtype = w_dtype;
  task.bias = bias;
  task.out = out;
  task.T = T;
  task.N = N;
  task.K = K;
  const auto block = isa_kernel(ex.isa, linear_block);
  // Columns go to threads in units of 16 so that every thread's range starts on a tile.
  constexpr int64_t kUnit = 16, kSharesMaxT = 4;
  const int64_t units = (N + kUnit - 1) / kUnit;
  const int64_t min_units = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(K * T * kUnit, 1));
  if (T <= kSharesMaxT && units >= 16 * static_cast<int64_t>(ex.pool.size())) {
    // Decode-sized: each thread streams its own contiguous share of the columns and then helps
    // with the others' (ThreadPool::parallel_for_shares), as the quantized linear does, so a
    // thread descheduled on a shared machine does not hold the step.
    const int64_t chunk =
        std::max(min_units, std::clamp<int64_t>(units / (16 * static_cast<int64_t>(ex.pool.size())), 1, 8));
    ex.pool.parallel_for_shares(units, chunk, [&](int64_t b, int64_t e, int) {
      block(task, b * kUnit, std::min(N, e * kUnit));
    });
    return;
  }
  ex.pool.parallel_for(units, min_units, [&](int64_t b, int64_t e) {
    block(task, b * kUnit, std::min(N, e * kUnit));
  });
}

}  // namespace tllm::cpu
