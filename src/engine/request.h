// What the engine reports about a request: incremental outputs and final state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace tllm {

enum class FinishReason { None, Stop, Length, Abort };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "abort"

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
  // 1 + the number of tokens more likely than `token` (prompt logprobs only; 0: not computed).
  int32_t rank = 0;
};

// One event of a request's stream. Events of one request arrive in order; the last one
// has finished == true. Text is the detokenized delta with stop strings already cut.
struct RequestOutput {
  std::string request_id;
  std::vector<int32_t> new_token_ids;
  std::string new_text;
  std::vector<TokenLogprob> new_logprobs;  // one per new token when logprobs were asked
  // Prompt logprobs (first event only, when asked): entry 0 has no logprob (nullopt).
  std::optional<std::vector<std::optional<TokenLogprob>>> prompt_logprobs;
  bool finished = false;
  FinishReason finish_reason = FinishReason::None;
  // The stop string or stop token id that ended it (vLLM's stop_reason: a string or a number).
  std::optional<std::variant<std::string, int32_t>> stop_reason;
  int num_prompt_tokens = 0;
  int num_cached_tokens = 0;  // prompt tokens served from the prefix cache
  int num_output_tokens = 0;  // so far
  std::string error;          // non-empty when the engine failed this request
  std::vector<float> embedding;  // a pooling model's output (the only event of its request)
  // The sequence's queued_time / scheduled_time (engine/sequence.h; 0: not scheduled yet).
  double queued_time = 0, scheduled_time = 0;
  // When the engine produced new_token_ids (now_seconds(); 0 when there are none). The server's
  // token timings use it rather than the time it drained the event, so that tokens drained
  // together still keep their spacing.
  double token_time = 0;
};

}  // namespace tllm
