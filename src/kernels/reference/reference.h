// Naive reference versions of every backend op, for tests only: host tensors, plain loops,
// double-precision arithmetic, no blocking or threading. Attention takes dense per-sequence
// K/V; make_paged_kv scatters those into paged caches with block tables for the backends.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"

namespace tllm::ref {

void embedding(Tensor& out, const Tensor& table, const Tensor& tokens);
void rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps);
void add_rms_norm(Tensor& residual, const Tensor& x, Tensor& out, const Tensor& weight, float eps);
void linear(Tensor& out, const Tensor& x, const LinearWeight& w);
void qk_norm_rope_kv_write(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm, const Tensor& k_norm,
                           float eps, const RopeSpec& rope, const Tensor& cos_sin, const Tensor& rope_rows,
                           const Tensor& slot_mapping, Tensor& k_cache, Tensor& v_cache);
// Causal attention with dense K/V: k[b], v[b] are f32 [seq_lens_k[b], n_kv_heads, head_dim];
// the q_len_b = cu_seqlens_q[b+1] - cu_seqlens_q[b] queries of b are its last positions.
void attention_dense(Tensor& out, const Tensor& qkv, const QKVLayout& layout, const std::vector<Tensor>& k,
                     const std::vector<Tensor>& v, const std::vector<int32_t>& cu_seqlens_q, float scale,
                     int sliding_window);
void silu_mul(Tensor& out, const Tensor& gate_up);
void gather_rows(Tensor& out, const Tensor& x, const Tensor& indices);
Tensor log_softmax(const Tensor& logits);  // f32 [R, V]
// Full-sort sampling with the same semantics as Backend::sample.
SampleResult sample(const Tensor& logits, const SampleBatch& batch);
// Token ids (ascending) row r may draw after all processing; {argmax} when greedy.
std::vector<int32_t> sample_keep_set(const float* logits_row, int64_t vocab, const SampleBatch& batch, int64_t r);

// Paged caches holding dense per-sequence K/V (rounded to `cache_dtype`), blocks handed out
// in a shuffled order (seeded) with `spare_blocks` unused ones mixed in, plus the
// attention metadata for the batch. Host tensors.
struct PagedKV {
  Tensor k_cache;  // [num_blocks, block_size, n_kv_heads, head_dim]
  Tensor v_cache;
  AttentionMeta meta;
  std::vector<int32_t> block_tables;  // [B, max_blocks_per_seq]
};
PagedKV make_paged_kv(const std::vector<Tensor>& k, const std::vector<Tensor>& v,
                      const std::vector<int32_t>& cu_seqlens_q, int block_size, DType cache_dtype,
                      int spare_blocks, uint64_t seed);

// Rounds every element of a host float tensor to `dtype` precision in place (f32 storage).
void round_to(Tensor& t, DType dtype);

}  // namespace tllm::ref
