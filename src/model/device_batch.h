// The metadata of a ForwardBatch on the backend's device, in buffers allocated once at
// their largest size: the same addresses every step, which CUDA graph replay needs.
#pragma once

#include "kernels/backend.h"
#include "model/forward_batch.h"

namespace tllm {

class DeviceBatch {
 public:
  DeviceBatch(Backend& backend, int max_tokens, int max_seqs, int max_blocks_per_seq, int block_size,
              int rotary_dim);

  // Copies `batch` into the buffers. When `rope_rows_host` is non-empty (dynamic RoPE),
  // those per-token cos/sin rows are uploaded and rope_rows indexes them 0..T-1;
  // otherwise rope_rows = positions (rows of the model's static table). Tokens with feed
  // rows are then written from their deferred draw (Backend::feed_tokens).
  void upload(const ForwardBatch& batch, const std::vector<float>& rope_rows_host);

  int max_tokens() const { return max_tokens_; }
  int max_seqs() const { return max_seqs_; }

  // Views of the current batch (valid until the next upload).
  Tensor tokens;          // i32 [T]
  Tensor positions;       // i32 [T]
  Tensor slot_mapping;    // i64 [T]
  Tensor rope_rows;       // i32 [T]
  Tensor dynamic_cos_sin; // f32 [T, rotary_dim] (dynamic RoPE only)
  Tensor logits_indices;  // i32 [n_logits]
  AttentionMeta meta;

 private:
  Backend& backend_;
  int max_tokens_, max_seqs_, max_blocks_per_seq_, block_size_, rotary_dim_;
  // All index arrays of a step travel in one host-to-device copy: they are packed back to
  // back into staging_ and copied into device_buf_, and the views point into it. The packing
  // depends only on (T, B, logits rows, table width), so a CUDA graph captured for one such
  // shape finds its arrays at the same addresses on every replay.
  std::vector<uint8_t> staging_;
  Tensor device_buf_;  // u8 [capacity]
  Tensor iota_buf_, cos_sin_buf_;
};

}  // namespace tllm
