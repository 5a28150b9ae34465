#include "model/device_batch.h"

#include <algorithm>
#include <numeric>

namespace tllm {

namespace {
template <typename T>
void upload_into(Backend& backend, Tensor& dst_view, const Tensor& buf, const std::vector<T>& host,
                 DType dtype) {
  const int64_t n = static_cast<int64_t>(host.size());
  TLLM_CHECK(n <= buf.numel(), "forward batch needs ", n, " entries, buffer holds ", buf.numel());
  dst_view = buf.slice_rows(0, n);
  if (n == 0) return;
  Tensor src = Tensor::wrap(const_cast<T*>(host.data()), {n}, dtype, Device::CPU);
  backend.copy(dst_view, src);
}
}  // namespace

DeviceBatch::DeviceBatch(Backend& backend, int max_tokens, int max_seqs, int max_blocks_per_seq,
                         int block_size, int rotary_dim)
    : backend_(backend),
      max_tokens_(max_tokens),
      max_seqs_(max_seqs),
      max_blocks_per_seq_(max_blocks_per_seq),
      block_size_(block_size),
      rotary_dim_(rotary_dim) {
  tokens_buf_ = backend.empty({max_tokens}, DType::I32);
  positions_buf_ = backend.empty({max_tokens}, DType::I32);
  slots_buf_ = backend.empty({max_tokens}, DType::I64);
  rope_rows_buf_ = backend.empty({max_tokens}, DType::I32);
  logits_idx_buf_ = backend.empty({max_tokens}, DType::I32);
  cu_buf_ = backend.empty({max_seqs + 1}, DType::I32);
  seq_lens_buf_ = backend.empty({max_seqs}, DType::I32);
  block_tables_buf_ = backend.empty({static_cast<int64_t>(max_seqs) * max_blocks_per_seq}, DType::I32);
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
  upload_into(backend_, tokens, tokens_buf_, b.tokens, DType::I32);
  upload_into(backend_, positions, positions_buf_, b.positions, DType::I32);
  upload_into(backend_, slot_mapping, slots_buf_, b.slot_mapping, DType::I64);
  upload_into(backend_, logits_indices, logits_idx_buf_, b.logits_indices, DType::I32);
  if (rope_rows_host.empty()) {
    rope_rows = positions;
  } else {
    TLLM_ASSERT(static_cast<int64_t>(rope_rows_host.size()) == static_cast<int64_t>(T) * rotary_dim_);
    if (!cos_sin_buf_ || cos_sin_buf_.dim(0) < T)
      cos_sin_buf_ = backend_.empty({max_tokens_, rotary_dim_}, DType::F32);
    dynamic_cos_sin = cos_sin_buf_.slice_rows(0, T);
    Tensor src = Tensor::wrap(const_cast<float*>(rope_rows_host.data()), {T, rotary_dim_}, DType::F32,
                              Device::CPU);
    backend_.copy(dynamic_cos_sin, src);
    rope_rows = iota_buf_.slice_rows(0, T);
  }
  Tensor cu, sl, bt;
  upload_into(backend_, cu, cu_buf_, b.cu_seqlens_q, DType::I32);
  upload_into(backend_, sl, seq_lens_buf_, b.seq_lens_k, DType::I32);
  upload_into(backend_, bt, block_tables_buf_, b.block_tables, DType::I32);
  meta.num_seqs = B;
  meta.num_tokens = T;
  meta.block_size = block_size_;
  meta.max_blocks_per_seq = b.max_blocks_per_seq;
  meta.cu_seqlens_q = cu;
  meta.seq_lens_k = sl;
  meta.block_tables = bt.view({B, b.max_blocks_per_seq});
  meta.max_seqlen_q = 0;
  meta.max_seqlen_k = 0;
  for (int i = 0; i < B; ++i) {
    meta.max_seqlen_q = std::max(meta.max_seqlen_q, b.cu_seqlens_q[i + 1] - b.cu_seqlens_q[i]);
    meta.max_seqlen_k = std::max(meta.max_seqlen_k, b.seq_lens_k[i]);
  }
}

}  // namespace tllm
