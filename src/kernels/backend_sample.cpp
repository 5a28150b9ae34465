// Backend's default deferred sampling (backend.h): the draw happens at once, the ids are
// kept by ticket, and feed_tokens patches the token array through a host copy.
#include "core/error.h"
#include "kernels/backend.h"

namespace tllm {

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
