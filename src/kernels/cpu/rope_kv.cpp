// qk_norm_rope_kv_write: per token, in place on its qkv row: optional per-head RMSNorm of q
// and k (Qwen3), RoPE on q and k, then k and v into the paged caches at slot_mapping[t].
#include <cmath>

#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

namespace {
// cs = [cos(rd/2) | sin(rd/2)] of this token's position.
void rope_head(float* h, const float* cs, int rd, bool interleaved) {
  const int half = rd / 2;
  const float* c = cs;
  const float* s = cs + half;
  if (interleaved) {
    for (int i = 0; i < half; ++i) {
      const float x1 = h[2 * i], x2 = h[2 * i + 1];
      h[2 * i] = x1 * c[i] - x2 * s[i];
      h[2 * i + 1] = x2 * c[i] + x1 * s[i];
    }
  } else {  // rotate_half: out = x * cos + cat(-x2, x1) * sin
    for (int i = 0; i < half; ++i) {
      const float x1 = h[i], x2 = h[i + half];
      h[i] = x1 * c[i] - x2 * s[i];
      h[i + half] = x2 * c[i] + x1 * s[i];
    }
  }
}
}  // namespace

void qk_norm_rope_kv_write(const RopeKvWriteParams& p, const Exec& ex) {
  const QKVLayout& L = p.layout;
  const int D = L.head_dim;
  const int rd = p.rope.rotary_dim;
  TLLM_CHECK(D > 0 && L.n_q_heads > 0 && L.n_kv_heads > 0, "qk_norm_rope_kv_write: bad layout (",
             L.n_q_heads, " q heads, ", L.n_kv_heads, " kv heads, head_dim ", D, ")");
  TLLM_CHECK(rd > 0 && rd <= D && rd % 2 == 0, "qk_norm_rope_kv_write: rotary_dim ", rd,
             " must be even and in (0, head_dim=", D, "]");
  TLLM_CHECK(p.cache_dtype == DType::F32 || p.cache_dtype == DType::BF16 || p.cache_dtype == DType::F16,
             "qk_norm_rope_kv_write: KV cache dtype ", dtype_name(p.cache_dtype), " unsupported (f32, bf16, f16)");
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    TLLM_CHECK_ARG(p.rope_rows[t] >= 0 && p.rope_rows[t] < p.cos_sin_rows, "qk_norm_rope_kv_write: rope row ",
                   p.rope_rows[t], " of token ", t, " outside the cos/sin table [0, ", p.cos_sin_rows, ")");
    TLLM_CHECK_ARG(p.slot_mapping[t] < p.num_slots, "qk_norm_rope_kv_write: slot ", p.slot_mapping[t],
                   " of token ", t, " outside the KV cache (", p.num_slots, " slots)");
  }
  const auto norm_row = isa_kernel(ex.isa, rms_norm_row);
  const auto store = isa_kernel(ex.isa, from_f32);
  const int64_t stride = L.row_stride();
  const int64_t kv_width = static_cast<int64_t>(L.n_kv_heads) * D;
  const size_t esize = dtype_size(p.cache_dtype);
  ex.pool.parallel_for(p.n_tokens, 4, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      float* row = p.qkv + t * stride;
      const float* cs = p.cos_sin + static_cast<int64_t>(p.rope_rows[t]) * rd;
      for (int h = 0; h < L.n_q_heads; ++h) {
        float* head = row + static_cast<int64_t>(h) * D;
        if (p.q_norm) norm_row(head, head, p.q_norm, D, p.eps);
        rope_head(head, cs, rd, p.rope.interleaved);
      }
      float* k = row + L.k_offset();
      for (int h = 0; h < L.n_kv_heads; ++h) {
        float* head = k + static_cast<int64_t>(h) * D;
        if (p.k_norm) norm_row(head, head, p.k_norm, D, p.eps);
        rope_head(head, cs, rd, p.rope.interleaved);
      }
      const int64_t slot = p.slot_mapping[t];
      if (slot < 0) continue;
      store(static_cast<char*>(p.k_cache) + slot * kv_width * esize, p.cache_dtype, k, kv_width);
      store(static_cast<char*>(p.v_cache) + slot * kv_width * esize, p.cache_dtype,
            row + L.v_offset(), kv_width);
    }
  });
}

}  // namespace tllm::cpu
