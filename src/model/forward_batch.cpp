#include "model/forward_batch.h"

#include "core/error.h"

namespace tllm {

void ForwardBatch::validate(int block_size, int num_blocks) const {
  const int T = num_tokens(), B = num_seqs();
  TLLM_CHECK(B >= 1 && T >= 1, "empty forward batch (", B, " sequences, ", T, " tokens)");
  TLLM_CHECK(positions.size() == tokens.size() && slot_mapping.size() == tokens.size(),
             "forward batch: tokens, positions and slot_mapping differ in length");
  TLLM_CHECK(cu_seqlens_q.front() == 0 && cu_seqlens_q.back() == T,
             "forward batch: cu_seqlens_q must run from 0 to the token count ", T);
  TLLM_CHECK(static_cast<int>(seq_lens_k.size()) == B, "forward batch: seq_lens_k has ",
             seq_lens_k.size(), " entries for ", B, " sequences");
  TLLM_CHECK(max_blocks_per_seq > 0 && static_cast<int64_t>(block_tables.size()) ==
                                           static_cast<int64_t>(B) * max_blocks_per_seq,
             "forward batch: block_tables has ", block_tables.size(), " entries, expected ", B,
             " x ", max_blocks_per_seq);
  const int64_t num_slots = static_cast<int64_t>(block_size) * num_blocks;
  for (int b = 0; b < B; ++b) {
    const int q0 = cu_seqlens_q[b], q1 = cu_seqlens_q[b + 1];
    TLLM_CHECK(q0 <= q1, "forward batch: cu_seqlens_q not monotonic at ", b);
    TLLM_CHECK(seq_lens_k[b] >= q1 - q0 && seq_lens_k[b] <= max_blocks_per_seq * block_size,
               "forward batch: sequence ", b, " has ", seq_lens_k[b], " keys for ", q1 - q0,
               " new tokens and ", max_blocks_per_seq, " blocks");
    const int needed = (seq_lens_k[b] + block_size - 1) / block_size;
    for (int i = 0; i < needed; ++i) {
      const int blk = block_tables[static_cast<size_t>(b) * max_blocks_per_seq + i];
      TLLM_CHECK(blk >= 0 && blk < num_blocks, "forward batch: sequence ", b, " block ", i, " is ", blk,
                 ", outside the pool of ", num_blocks);
    }
    for (int t = q0; t < q1; ++t) {
      TLLM_CHECK(positions[t] == seq_lens_k[b] - (q1 - q0) + (t - q0),
                 "forward batch: token ", t, " has position ", positions[t],
                 " but new tokens must be the last of their sequence");
      TLLM_CHECK(slot_mapping[t] < num_slots, "forward batch: slot ", slot_mapping[t], " out of range");
    }
  }
  TLLM_CHECK(feed_rows.empty() || (static_cast<int>(feed_rows.size()) == T && (feed_ticket == 0 || feed_ticket == 1)),
             "forward batch: feed_rows has ", feed_rows.size(), " entries for ", T, " tokens (ticket ", feed_ticket,
             ")");
  for (int32_t i : logits_indices)
    TLLM_CHECK(i >= 0 && i < T, "forward batch: logits index ", i, " outside ", T, " tokens");
}

}  // namespace tllm
