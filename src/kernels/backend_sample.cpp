// What every backend's sample() shares (backend.h): the check of a SampleBatch, and the default
// deferred sampling (the draw happens at once, the ids are kept by ticket, and feed_tokens
// patches the token array through a host copy).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/backend.h"

namespace tllm {
namespace {

void check_csr(const std::vector<int32_t>& offsets, const std::vector<int32_t>& tokens, int64_t rows,
               int64_t vocab, const char* what) {
  if (offsets.empty()) return;
  TLLM_CHECK_ARG(static_cast<int64_t>(offsets.size()) == rows + 1, "sample: ", what, "_offsets has ",
                 offsets.size(), " entries, expected rows + 1 = ", rows + 1);
  TLLM_CHECK_ARG(offsets[0] == 0 && offsets[rows] == static_cast<int32_t>(tokens.size()), "sample: ", what,
                 "_offsets must run from 0 to ", tokens.size());
  for (int64_t r = 0; r < rows; ++r)
    TLLM_CHECK_ARG(offsets[r] <= offsets[r + 1], "sample: ", what, "_offsets decreases at row ", r);
  for (int32_t t : tokens)
    TLLM_CHECK_ARG(t >= 0 && t < vocab, "sample: ", what, " token id ", t, " outside the vocabulary [0, ",
                   vocab, ")");
}

}  // namespace

void check_sample_batch(const SampleBatch& batch, int64_t rows, int64_t vocab) {
  TLLM_CHECK_ARG(static_cast<int64_t>(batch.rows.size()) == rows, "sample: ", batch.rows.size(),
                 " sampling rows for ", rows, " rows of logits");
  TLLM_CHECK_ARG(vocab > 0, "sample: empty vocabulary");
  check_csr(batch.penalty_offsets, batch.penalty_tokens, rows, vocab, "penalty");
  TLLM_CHECK_ARG(batch.penalty_counts.size() == batch.penalty_tokens.size(), "sample: penalty_counts has ",
                 batch.penalty_counts.size(), " entries for ", batch.penalty_tokens.size(), " penalty tokens");
  check_csr(batch.banned_offsets, batch.banned_tokens, rows, vocab, "banned");
  check_csr(batch.bias_offsets, batch.bias_tokens, rows, vocab, "bias");
  TLLM_CHECK_ARG(batch.bias_values.size() == batch.bias_tokens.size(), "sample: bias_values has ",
                 batch.bias_values.size(), " entries for ", batch.bias_tokens.size(), " bias tokens");
  for (int64_t r = 0; !batch.bias_offsets.empty() && r < rows; ++r) {  // unique: CUDA adds them in parallel
    std::vector<int32_t> t(batch.bias_tokens.begin() + batch.bias_offsets[r],
                           batch.bias_tokens.begin() + batch.bias_offsets[r + 1]);
    std::sort(t.begin(), t.end());
    TLLM_CHECK_ARG(std::adjacent_find(t.begin(), t.end()) == t.end(), "sample: row ", r, " biases a token twice");
  }
  for (int64_t r = 0; r < rows; ++r) {
    const SamplingRow& row = batch.rows[r];
    TLLM_CHECK_ARG(row.temperature >= 0.0f && std::isfinite(row.temperature), "sample: row ", r,
                   " temperature ", row.temperature, " must be >= 0");
    TLLM_CHECK_ARG(row.repetition_penalty > 0.0f, "sample: row ", r, " repetition_penalty ",
                   row.repetition_penalty, " must be > 0");
    TLLM_CHECK_ARG(row.num_top_logprobs >= 0, "sample: row ", r, " num_top_logprobs ", row.num_top_logprobs,
                   " must be >= 0");
  }
}

int Backend::sample_deferred(const Tensor& logits, const SampleBatch& batch) {
  const int ticket = next_ticket_;
  TLLM_CHECK(!deferred_live_[ticket], "sample_deferred: both draws are outstanding; collect one first");
  deferred_[ticket] = sample(logits, batch);  // a bad batch throws: nothing taken
  deferred_live_[ticket] = true;
  next_ticket_ ^= 1;
  return ticket;
}

void Backend::feed_tokens(Tensor& tokens, const std::vector<int32_t>& rows, int ticket) {
  TLLM_CHECK(ticket == 0 || ticket == 1, "feed_tokens: ticket ", ticket, " is not 0 or 1");
  TLLM_CHECK(deferred_live_[ticket], "feed_tokens: no draw under ticket ", ticket);
  TLLM_CHECK(tokens.dtype() == DType::I32 && tokens.numel() == static_cast<int64_t>(rows.size()),
             "feed_tokens: tokens ", tokens.str(), " against ", rows.size(), " rows");
  const std::vector<int32_t>& ids = deferred_[ticket].tokens;
  Tensor host = Tensor::empty(tokens.shape(), DType::I32);
  copy(host, tokens);
  int32_t* t = host.data<int32_t>();
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0) continue;
    TLLM_CHECK(rows[i] < static_cast<int32_t>(ids.size()), "feed_tokens: row ", rows[i], " of a draw of ",
               ids.size(), " rows");
    t[i] = ids[rows[i]];
  }
  copy(tokens, host);
}

SampleResult Backend::collect_sample(int ticket) {
  TLLM_CHECK(ticket == 0 || ticket == 1, "collect_sample: ticket ", ticket, " is not 0 or 1");
  TLLM_CHECK(deferred_live_[ticket], "collect_sample: no draw under ticket ", ticket);
  deferred_live_[ticket] = false;
  return std::move(deferred_[ticket]);
}

}  // namespace tllm
