// Token embedding: out[t, :] = table[tokens[t], :] converted to f32.
#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

void embedding(float* out, const void* table, DType table_dtype, int64_t vocab, int64_t hidden,
               const int32_t* tokens, int64_t n_tokens, const Exec& ex) {
  TLLM_CHECK(table_dtype == DType::F32 || table_dtype == DType::BF16 || table_dtype == DType::F16,
             "embedding: table dtype ", dtype_name(table_dtype), " unsupported (f32, bf16, f16)");
  for (int64_t t = 0; t < n_tokens; ++t) {
    TLLM_CHECK_ARG(tokens[t] >= 0 && tokens[t] < vocab, "embedding: token id ", tokens[t],
                   " at position ", t, " is outside the vocabulary [0, ", vocab, ")");
  }
  const auto row_to_f32 = isa_kernel(ex.isa, to_f32);
  const size_t row_bytes = dtype_nbytes(table_dtype, hidden);
  ex.pool.parallel_for(n_tokens, 8, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      row_to_f32(out + t * hidden, static_cast<const char*>(table) + tokens[t] * row_bytes,
                 table_dtype, hidden);
    }
  });
}

}  // namespace tllm::cpu
