#include "model/device_batch.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace tllm {

namespace {
size_t align8(size_t x) { return (x + 7) / 8 * 8; }
}  // namespace

DeviceBatch::DeviceBatch(Backend& backend, int max_tokens, int max_seqs, int max_blocks_per_seq,
                         int block_size, int rotary_dim)
    : backend_(backend),
      max_tokens_(max_tokens),
      max_seqs_(max_seqs),
      max_blocks_per_seq_(max_blocks_per_seq),
      block_size_(block_size),
      rotary_dim_(rotary_dim) {
  // tokens, positions, logits indices (i32 [T] each), slots (i64 [T]), cu (i32 [B+1]),
  // seq lens (i32 [B]), block tables (i32 [B * width]); each padded to 8 bytes.
  const size_t cap = 3 * align8(4ull * max_tokens) + 8ull * max_tokens + align8(4ull * (max_seqs + 1)) +
                     align8(4ull * max_seqs) + align8(4ull * max_seqs * max_blocks_per_seq);
  device_buf_ = backend.empty({static_cast<int64_t>(cap)}, DType::U8);
  std::vector<int32_t> iota(max_tokens);
  std::iota(iota.begin(), iota.end(), 0);
  iota_buf_ = backend.empty({max_tokens}, DType::I32);
  Tensor src = Tensor::wrap(iota.data(), {max_tokens}, DType::I32, Device::CPU);
  backend.copy(iota_buf_, src);
}

void DeviceBatch::upload(const ForwardBatch& b, const std::vector<float>& rope_rows_host) {
  const int T = b.num_tokens(), B = b.num_seqs();
  TLLM_CHECK(T <= max_tokens_, "forward batch has ", T, " tokens; the workspace holds ", max_tokens_,
             " (raise --max-num-batched-tokens)");
  TLLM_CHECK(B <= max_seqs_, "forward batch has ", B, " sequences; the workspace holds ", max_seqs_);
  TLLM_CHECK(b.max_blocks_per_seq <= max_blocks_per_seq_, "forward batch needs ", b.max_blocks_per_seq,
             " blocks per sequence; the workspace holds ", max_blocks_per_seq_);
  const int n_logits = static_cast<int>(b.logits_indices.size());
  TLLM_CHECK(n_logits <= max_tokens_, "forward batch asks for ", n_logits, " logits rows; at most ", max_tokens_);

  staging_.resize(static_cast<size_t>(device_buf_.numel()));
  size_t off = 0;
  std::vector<std::pair<size_t, size_t>> spans;  // (offset, bytes) of each array, in order
  auto put = [&](const void* data, size_t bytes) {
    if (bytes) std::memcpy(staging_.data() + off, data, bytes);  // an empty vector's data() may be null
    spans.emplace_back(off, bytes);
    off += align8(bytes);
  };
  put(b.tokens.data(), 4ull * T);
  put(b.positions.data(), 4ull * T);
  put(b.logits_indices.data(), 4ull * n_logits);
  put(b.slot_mapping.data(), 8ull * T);
  put(b.cu_seqlens_q.data(), 4ull * (B + 1));
  put(b.seq_lens_k.data(), 4ull * B);
  put(b.block_tables.data(), 4ull * b.block_tables.size());
  Tensor dst = device_buf_.slice_rows(0, static_cast<int64_t>(off));
  Tensor src = Tensor::wrap(staging_.data(), {static_cast<int64_t>(off)}, DType::U8, Device::CPU);
  backend_.copy(dst, src);

  uint8_t* base = device_buf_.data<uint8_t>();
  auto view = [&](int i, Shape shape, DType dt) {
    return Tensor::wrap(base + spans[i].first, std::move(shape), dt, device_buf_.device(), device_buf_.owner());
  };
  tokens = view(0, {T}, DType::I32);
  // Tokens drawn by a step the host has not collected: written on the device, after the draw.
  if (!b.feed_rows.empty()) backend_.feed_tokens(tokens, b.feed_rows, b.feed_ticket);
  positions = view(1, {T}, DType::I32);
  logits_indices = view(2, {n_logits}, DType::I32);
  slot_mapping = view(3, {T}, DType::I64);
  if (rope_rows_host.empty()) {
    rope_rows = positions;
  } else {
    TLLM_ASSERT(static_cast<int64_t>(rope_rows_host.size()) == static_cast<int64_t>(T) * rotary_dim_);
    if (!cos_sin_buf_) cos_sin_buf_ = backend_.empty({max_tokens_, rotary_dim_}, DType::F32);
    dynamic_cos_sin = cos_sin_buf_.slice_rows(0, T);
    Tensor cs = Tensor::wrap(const_cast<float*>(rope_rows_host.data()), {T, rotary_dim_}, DType::F32, Device::CPU);
    backend_.copy(dynamic_cos_sin, cs);
    rope_rows = iota_buf_.slice_rows(0, T);
  }
  meta.num_seqs = B;
  meta.num_tokens = T;
  meta.block_size = block_size_;
  meta.max_blocks_per_seq = b.max_blocks_per_seq;
  meta.cu_seqlens_q = view(4, {B + 1}, DType::I32);
  meta.seq_lens_k = view(5, {B}, DType::I32);
  meta.block_tables = view(6, {B, b.max_blocks_per_seq}, DType::I32);
  meta.max_seqlen_q = 0;
  meta.max_seqlen_k = 0;
  for (int i = 0; i < B; ++i) {
    meta.max_seqlen_q = std::max(meta.max_seqlen_q, b.cu_seqlens_q[i + 1] - b.cu_seqlens_q[i]);
    meta.max_seqlen_k = std::max(meta.max_seqlen_k, b.seq_lens_k[i]);
  }
}

}  // namespace tllm
