// ForwardBatch::validate: a consistent batch passes; each inconsistency throws naming the
// field, including the feed rows of async scheduling.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "model/forward_batch.h"

namespace tllm {
namespace {

// Two sequences: 3 prompt tokens of sequence 0 (positions 0..2), one decode token of
// sequence 1 at position 5; blocks of 4.
ForwardBatch valid_batch() {
  ForwardBatch b;
  b.tokens = {11, 12, 13, 14};
  b.positions = {0, 1, 2, 5};
  b.cu_seqlens_q = {0, 3, 4};
  b.seq_lens_k = {3, 6};
  b.max_blocks_per_seq = 2;
  b.block_tables = {0, 0, 1, 2};
  b.slot_mapping = {0, 1, 2, 9};
  b.logits_indices = {2, 3};
  return b;
}

void expect_rejected(const std::function<void(ForwardBatch&)>& edit, const std::string& says) {
  ForwardBatch b = valid_batch();
  edit(b);
  try {
    b.validate(4, 8);
    ADD_FAILURE() << "accepted a batch that should say: " << says;
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

TEST(ForwardBatch, ValidBatchPasses) {
  EXPECT_NO_THROW(valid_batch().validate(4, 8));
  ForwardBatch fed = valid_batch();
  fed.tokens[3] = 0;  // a placeholder, fed from row 1 of draw 0
  fed.feed_rows = {-1, -1, -1, 1};
  fed.feed_ticket = 0;
  EXPECT_NO_THROW(fed.validate(4, 8));
}

TEST(ForwardBatch, InconsistenciesNameTheirField) {
  expect_rejected([](ForwardBatch& b) { b.positions.pop_back(); }, "positions");
  expect_rejected([](ForwardBatch& b) { b.cu_seqlens_q.back() = 5; }, "cu_seqlens_q");
  expect_rejected([](ForwardBatch& b) { b.seq_lens_k.pop_back(); }, "seq_lens_k");
  expect_rejected([](ForwardBatch& b) { b.block_tables[2] = 8; }, "outside the pool");
  expect_rejected([](ForwardBatch& b) { b.positions[3] = 4; }, "position");
  expect_rejected([](ForwardBatch& b) { b.slot_mapping[0] = 32; }, "slot");
  expect_rejected([](ForwardBatch& b) { b.logits_indices[0] = 4; }, "logits index");
  expect_rejected([](ForwardBatch& b) { b.feed_rows = {-1, 1}; b.feed_ticket = 0; }, "feed_rows");
  expect_rejected([](ForwardBatch& b) { b.feed_rows = {-1, -1, -1, 0}; b.feed_ticket = 2; }, "feed_rows");
}

}  // namespace
}  // namespace tllm
