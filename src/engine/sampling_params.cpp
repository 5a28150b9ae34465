#include "engine/sampling_params.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tllm {

void SamplingParams::validate(int vocab_size) const {
  TLLM_CHECK_ARG(std::isfinite(temperature) && temperature >= 0.0f,
                 "temperature must be a finite number >= 0, got ", temperature);
  TLLM_CHECK_ARG(top_p > 0.0f && top_p <= 1.0f, "top_p must be in (0, 1], got ", top_p);
  TLLM_CHECK_ARG(top_k >= -1, "top_k must be -1 (disabled) or a positive integer, got ", top_k);
  TLLM_CHECK_ARG(min_p >= 0.0f && min_p <= 1.0f, "min_p must be in [0, 1], got ", min_p);
  TLLM_CHECK_ARG(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f && repetition_penalty <= 2.0f,
                 "repetition_penalty must be in (0, 2], got ", repetition_penalty);
  TLLM_CHECK_ARG(presence_penalty >= -2.0f && presence_penalty <= 2.0f,
                 "presence_penalty must be in [-2, 2], got ", presence_penalty);
  TLLM_CHECK_ARG(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f,
                 "frequency_penalty must be in [-2, 2], got ", frequency_penalty);
  TLLM_CHECK_ARG(max_tokens >= 1, "max_tokens must be at least 1, got ", max_tokens);
  TLLM_CHECK_ARG(min_tokens >= 0 && min_tokens <= max_tokens, "min_tokens must be in [0, max_tokens=",
                 max_tokens, "], got ", min_tokens);
  TLLM_CHECK_ARG(logprobs <= 20, "logprobs must be at most 20, got ", logprobs);
  TLLM_CHECK_ARG(prompt_logprobs <= 20, "prompt_logprobs must be at most 20, got ", prompt_logprobs);
  for (const std::string& s : stop) TLLM_CHECK_ARG(!s.empty(), "stop strings must not be empty");
  std::vector<int32_t> biased;
  for (const auto& [id, bias] : logit_bias) {
    TLLM_CHECK_ARG(id >= 0 && id < vocab_size, "logit_bias: token id ", id, " is outside the vocabulary [0, ",
                   vocab_size, ")");
    TLLM_CHECK_ARG(std::isfinite(bias), "logit_bias: the bias of token ", id, " must be a finite number");
    biased.push_back(id);
  }
  std::sort(biased.begin(), biased.end());
  const auto twice = std::adjacent_find(biased.begin(), biased.end());
  TLLM_CHECK_ARG(twice == biased.end(), "logit_bias: token id ", twice == biased.end() ? 0 : *twice,
                 " is listed twice");
  for (int32_t id : stop_token_ids)
    TLLM_CHECK_ARG(id >= 0 && id < vocab_size, "stop_token_ids: token id ", id, " is outside the vocabulary [0, ",
                   vocab_size, ")");
}

}  // namespace tllm
