// Causal paged attention over a flat varlen batch, FlashAttention-2 style: the work is cut
// into items of (sequence, kv head, tile of queries) whose rows are every q head of that kv
// head's group times the tile's queries, so each K/V element read serves all of them. An
// item walks its keys with a running max and sum (online softmax). When there are too few
// items to keep the threads busy (decode at small batch, long context), the keys of each
// item are also split into chunks that run in parallel and are merged with log-sum-exp
// (flash-decoding).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}

namespace scalar {

// Keys one at a time with the online-softmax update; plain loops.
void attention_item(const AttentionParams& p, const AttentionItem& it, float* ws) {
  const int D = p.head_dim;
  const int group = p.n_q_heads / p.n_kv_heads;
  const int rows = it.q_count * group;
  const int q_len = p.cu_seqlens_q[it.seq + 1] - p.cu_seqlens_q[it.seq];
  const int first_pos = p.seq_lens_k[it.seq] - q_len;  // position of the sequence's query 0
  const int32_t* blocks = p.block_tables + static_cast<int64_t>(it.seq) * p.max_blocks_per_seq;
  const int64_t kv_row = static_cast<int64_t>(p.n_kv_heads) * D;
  const size_t esize = dtype_size(p.cache_dtype);

  float* q = ws;                                    // [rows, D], pre-scaled
  float* o = q + static_cast<int64_t>(rows) * D;    // [rows, D]
  float* m = o + static_cast<int64_t>(rows) * D;    // [rows]
  float* l = m + rows;                              // [rows]
  float* kbuf = l + rows;                           // [D]
  float* vbuf = kbuf + D;                           // [D]
  for (int qi = 0; qi < it.q_count; ++qi) {
    const int64_t tok = p.cu_seqlens_q[it.seq] + it.q_begin + qi;
    for (int hh = 0; hh < group; ++hh) {
      const int r = qi * group + hh;
      const float* src = p.q + tok * p.q_stride + static_cast<int64_t>(it.kv_head * group + hh) * D;
      for (int d = 0; d < D; ++d) q[r * D + d] = src[d] * p.scale;
      for (int d = 0; d < D; ++d) o[r * D + d] = 0.0f;
      m[r] = kNegInf;
      l[r] = 0.0f;
    }
  }
  for (int key = it.key_begin; key < it.key_end; ++key) {
    const int64_t slot = static_cast<int64_t>(blocks[key / p.block_size]) * p.block_size + key % p.block_size;
    const int64_t off = (slot * kv_row + static_cast<int64_t>(it.kv_head) * D) * static_cast<int64_t>(esize);
    to_f32(kbuf, static_cast<const char*>(p.k_cache) + off, p.cache_dtype, D);
    to_f32(vbuf, static_cast<const char*>(p.v_cache) + off, p.cache_dtype, D);
    for (int qi = 0; qi < it.q_count; ++qi) {
      const int pos = first_pos + it.q_begin + qi;
      if (key > pos || (p.sliding_window > 0 && key <= pos - p.sliding_window)) continue;
      for (int hh = 0; hh < group; ++hh) {
        const int r = qi * group + hh;
        float s = 0.0f;
        for (int d = 0; d < D; ++d) s += q[r * D + d] * kbuf[d];
        float* orow = o + static_cast<int64_t>(r) * D;
        if (s > m[r]) {
          const float alpha = std::exp(m[r] - s);  // 0 on the first key (m = -inf)
          l[r] = l[r] * alpha + 1.0f;
          for (int d = 0; d < D; ++d) orow[d] = orow[d] * alpha + vbuf[d];
          m[r] = s;
        } else {
          const float pr = std::exp(s - m[r]);
          l[r] += pr;
          for (int d = 0; d < D; ++d) orow[d] += pr * vbuf[d];
        }
      }
    }
  }
  for (int qi = 0; qi < it.q_count; ++qi) {
    const int64_t tok = p.cu_seqlens_q[it.seq] + it.q_begin + qi;
    for (int hh = 0; hh < group; ++hh) {
      const int r = qi * group + hh;
      const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
      float* dst = it.partial_out
                       ? it.partial_out + static_cast<int64_t>(r) * D
                       : p.out + tok * p.n_q_heads * D + static_cast<int64_t>(it.kv_head * group + hh) * D;
      for (int d = 0; d < D; ++d) dst[d] = o[r * D + d] * inv;
      if (it.partial_lse) it.partial_lse[r] = l[r] > 0.0f ? m[r] + std::log(l[r]) : kNegInf;
    }
  }
}

}  // namespace scalar

void validate_attention(const AttentionParams& p, int64_t num_blocks) {
  TLLM_CHECK(p.head_dim > 0 && p.n_kv_heads > 0 && p.n_q_heads > 0 && p.n_q_heads % p.n_kv_heads == 0,
             "attention: n_q_heads ", p.n_q_heads, " must be a positive multiple of n_kv_heads ",
             p.n_kv_heads, " (head_dim ", p.head_dim, ")");
  TLLM_CHECK(p.block_size > 0, "attention: block_size ", p.block_size, " must be positive");
  TLLM_CHECK(p.cache_dtype == DType::F32 || p.cache_dtype == DType::BF16 || p.cache_dtype == DType::F16,
             "attention: KV cache dtype ", dtype_name(p.cache_dtype), " unsupported (f32, bf16, f16)");
  TLLM_CHECK(p.num_seqs >= 0 && p.cu_seqlens_q[0] == 0, "attention: cu_seqlens_q[0] must be 0, got ",
             p.num_seqs > 0 ? p.cu_seqlens_q[0] : 0);
  TLLM_CHECK(p.cu_seqlens_q[p.num_seqs] == p.num_tokens, "attention: cu_seqlens_q[", p.num_seqs, "] = ",
             p.cu_seqlens_q[p.num_seqs], " but the batch has ", p.num_tokens, " tokens");
  for (int b = 0; b < p.num_seqs; ++b) {
    const int q_len = p.cu_seqlens_q[b + 1] - p.cu_seqlens_q[b];
    const int k_len = p.seq_lens_k[b];
    TLLM_CHECK(q_len >= 0, "attention: cu_seqlens_q decreases at sequence ", b);
    TLLM_CHECK(k_len >= q_len, "attention: sequence ", b, " has seq_lens_k ", k_len, " < its ", q_len,
               " query tokens");
    const int64_t n_blocks = (static_cast<int64_t>(k_len) + p.block_size - 1) / p.block_size;
    TLLM_CHECK(n_blocks <= p.max_blocks_per_seq, "attention: sequence ", b, " needs ", n_blocks,
               " blocks of ", p.block_size, " for ", k_len, " keys but max_blocks_per_seq is ",
               p.max_blocks_per_seq);
    for (int64_t j = 0; j < n_blocks; ++j) {
      const int32_t blk = p.block_tables[b * static_cast<int64_t>(p.max_blocks_per_seq) + j];
      TLLM_CHECK(blk >= 0 && blk < num_blocks, "attention: block_tables[", b, ", ", j, "] = ", blk,
                 " outside the cache's ", num_blocks, " blocks");
    }
  }
}

void attention(const AttentionParams& p, const Exec& ex) {
  if (p.num_tokens == 0) return;
  const int group = p.n_q_heads / p.n_kv_heads;
  const int D = p.head_dim;
  // Queries per item: about 32 rows (queries x group heads) share each K/V tile.
  const int q_tile = std::max(1, 32 / group);

  std::vector<AttentionItem> items;
  for (int b = 0; b < p.num_seqs; ++b) {
    const int q_len = p.cu_seqlens_q[b + 1] - p.cu_seqlens_q[b];
    const int first_pos = p.seq_lens_k[b] - q_len;
    for (int g = 0; g < p.n_kv_heads; ++g) {
      for (int q0 = 0; q0 < q_len; q0 += q_tile) {
        AttentionItem it;
        it.seq = b;
        it.kv_head = g;
        it.q_begin = q0;
        it.q_count = std::min(q_tile, q_len - q0);
        const int pos_lo = first_pos + q0;
        it.key_end = pos_lo + it.q_count;
        it.key_begin = p.sliding_window > 0 ? std::max(0, pos_lo - p.sliding_window + 1) : 0;
        items.push_back(it);
      }
    }
  }

  // Split long key ranges when the items alone would leave threads idle.
  const int n_threads = ex.pool.size();
  const int64_t target = 4 * static_cast<int64_t>(n_threads);
  constexpr int kMinChunk = 256;
  struct Split {
    int first;  // index of its first chunk in `work`
    int count;
  };
  std::vector<AttentionItem> work;
  std::vector<Split> splits;  // per item
  int64_t partial_floats = 0;
  const bool may_split = n_threads > 1 && static_cast<int64_t>(items.size()) < target;
  for (const AttentionItem& it : items) {
    int chunks = 1;
    if (may_split) {
      const int len = it.key_end - it.key_begin;
      const int want = static_cast<int>((target + items.size() - 1) / items.size());
      chunks = std::max(1, std::min(want, len / kMinChunk));
    }
    splits.push_back({static_cast<int>(work.size()), chunks});
    if (chunks == 1) {
      work.push_back(it);
      continue;
    }
    const int len = it.key_end - it.key_begin;
    for (int c = 0; c < chunks; ++c) {
      AttentionItem part = it;
      // Chunk edges on multiples of 16 keys so that SIMD key tiles stay whole.
      const int b = it.key_begin + static_cast<int>(static_cast<int64_t>(len) * c / chunks / 16 * 16);
      const int e = c + 1 == chunks ? it.key_end
                                    : it.key_begin + static_cast<int>(static_cast<int64_t>(len) * (c + 1) / chunks / 16 * 16);
      part.key_begin = b;
      part.key_end = e;
      work.push_back(part);
      partial_floats += static_cast<int64_t>(it.q_count) * group * (D + 1);
    }
  }

  const int64_t max_rows = static_cast<int64_t>(q_tile) * group;
  const int64_t ws_floats = (attention_workspace_floats(max_rows, D) + 15) / 16 * 16;
  float* scratch = ex.scratch.floats(static_cast<size_t>(ws_floats * n_threads + partial_floats + 16));
  float* partials = scratch + ws_floats * n_threads;
  {
    float* next = partials;
    for (size_t i = 0; i < items.size(); ++i) {
      if (splits[i].count == 1) continue;
      const int64_t rows = static_cast<int64_t>(items[i].q_count) * group;
      for (int c = 0; c < splits[i].count; ++c) {
        AttentionItem& part = work[splits[i].first + c];
        part.partial_out = next;
        next += rows * D;
        part.partial_lse = next;
        next += rows;
      }
    }
  }

  const auto kernel = isa_kernel(ex.isa, attention_item);
  ex.pool.parallel_for_dynamic(static_cast<int64_t>(work.size()), [&](int64_t i, int thread) {
    kernel(p, work[i], scratch + ws_floats * thread);
  });

  // Merge split items: out = sum_c exp(lse_c - lse) * O_c with lse = logsumexp_c lse_c.
  for (size_t i = 0; i < items.size(); ++i) {
    const Split sp = splits[i];
    if (sp.count == 1) continue;
    const AttentionItem& it = items[i];
    const int rows = it.q_count * group;
    for (int r = 0; r < rows; ++r) {
      float mx = kNegInf;
      for (int c = 0; c < sp.count; ++c) mx = std::max(mx, work[sp.first + c].partial_lse[r]);
      const int qi = r / group, hh = r % group;
      const int64_t tok = p.cu_seqlens_q[it.seq] + it.q_begin + qi;
      float* dst = p.out + tok * p.n_q_heads * D + static_cast<int64_t>(it.kv_head * group + hh) * D;
      for (int d = 0; d < D; ++d) dst[d] = 0.0f;
      float wsum = 0.0f;
      for (int c = 0; c < sp.count; ++c) {
        const AttentionItem& part = work[sp.first + c];
        if (part.partial_lse[r] == kNegInf) continue;
        const float w = std::exp(part.partial_lse[r] - mx);
        wsum += w;
        const float* src = part.partial_out + static_cast<int64_t>(r) * D;
        for (int d = 0; d < D; ++d) dst[d] += w * src[d];
      }
      const float inv = 1.0f / wsum;
      for (int d = 0; d < D; ++d) dst[d] *= inv;
    }
  }
}

}  // namespace tllm::cpu
