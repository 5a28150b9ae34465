// ForwardBatch: the one batch shape of the model forward (see docs/architecture.md).
// A flat list of T tokens from B sequences; prefill chunks and decode tokens mix freely.
// The engine fills it on the host each step; the model uploads it to its backend.
//
// It lives in the model layer (not engine, as DESIGN.md first placed it) because the
// model consumes it and layers only depend upward.
#pragma once

#include <cstdint>
#include <vector>

namespace tllm {

struct ForwardBatch {
  std::vector<int32_t> tokens;        // [T]
  std::vector<int32_t> positions;     // [T] position of each token in its sequence
  std::vector<int32_t> cu_seqlens_q;  // [B+1] tokens of sequence b: [cu[b], cu[b+1])
  std::vector<int32_t> seq_lens_k;    // [B] cached + new tokens of b after this step
  std::vector<int32_t> block_tables;  // [B * max_blocks_per_seq], row-major, unused = 0
  int max_blocks_per_seq = 0;
  std::vector<int64_t> slot_mapping;  // [T] cache slot of each new token's K/V (-1: skip)
  std::vector<int32_t> logits_indices;  // rows of the batch whose logits are returned
  // Tokens the host has not seen yet (the engine's async scheduling): where feed_rows[t] >= 0,
  // token t is row feed_rows[t] of the deferred draw feed_ticket (Backend::sample_deferred)
  // and tokens[t] is a placeholder. Empty: every token is in `tokens`.
  std::vector<int32_t> feed_rows;     // [T] or empty
  int feed_ticket = -1;

  int num_tokens() const { return static_cast<int>(tokens.size()); }
  int num_seqs() const { return cu_seqlens_q.empty() ? 0 : static_cast<int>(cu_seqlens_q.size()) - 1; }
  // Throws naming the field when sizes or values are inconsistent.
  void validate(int block_size, int num_blocks) const;
};

}  // namespace tllm
