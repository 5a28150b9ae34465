#include "engine/sampling_params.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tllm {

void SamplingParams::validate(int vocab_size) const {
  TLLM_CHECK_FIELD(std::isfinite(temperature) && temperature >= 0.0f, "temperature",
                   "temperature must be a finite number >= 0, got ", temperature);
  TLLM_CHECK_FIELD(top_p > 0.0f && top_p <= 1.0f, "top_p", "top_p must be in (0, 1], got ", top_p);
  TLLM_CHECK_FIELD(top_k >= -1, "top_k", "top_k must be -1 (disabled) or a positive integer, got ", top_k);
  TLLM_CHECK_FIELD(min_p >= 0.0f && min_p <= 1.0f, "min_p", "min_p must be in [0, 1], got ", min_p);
  TLLM_CHECK_FIELD(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f && repetition_penalty <= 2.0f,
                   "repetition_penalty", "repetition_penalty must be in (0, 2], got ", repetition_penalty);
  TLLM_CHECK_FIELD(presence_penalty >= -2.0f && presence_penalty <= 2.0f, "presence_penalty",
                   "presence_penalty must be in [-2, 2], got ", presence_penalty);
  TLLM_CHECK_FIELD(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f, "frequency_penalty",
                   "frequency_penalty must be in [-2, 2], got ", frequency_penalty);
  TLLM_CHECK_FIELD(max_tokens >= 1, "max_tokens", "max_tokens must be at least 1, got ", max_tokens);
  TLLM_CHECK_FIELD(min_tokens >= 0 && min_tokens <= max_tokens, "min_tokens",
                   "min_tokens must be in [0, max_tokens=", max_tokens, "], got ", min_tokens);
  TLLM_CHECK_FIELD(logprobs <= 20, "logprobs", "logprobs must be at most 20, got ", logprobs);
  TLLM_CHECK_FIELD(prompt_logprobs <= 20, "prompt_logprobs", "prompt_logprobs must be at most 20, got ",
                   prompt_logprobs);
  for (const std::string& s : stop) TLLM_CHECK_FIELD(!s.empty(), "stop", "stop strings must not be empty");
  std::vector<int32_t> biased;
  for (const auto& [id, bias] : logit_bias) {
    TLLM_CHECK_FIELD(id >= 0 && id < vocab_size, "logit_bias", "logit_bias: token id ", id,
                     " is outside the vocabulary [0, ", vocab_size, ")");
    TLLM_CHECK_FIELD(std::isfinite(bias), "logit_bias", "logit_bias: the bias of token ", id,
                     " must be a finite number");
    biased.push_back(id);
  }
  std::sort(biased.begin(), biased.end());
  const auto twice = std::adjacent_find(biased.begin(), biased.end());
  TLLM_CHECK_FIELD(twice == biased.end(), "logit_bias", "logit_bias: token id ", twice == biased.end() ? 0 : *twice,
                   " is listed twice");
  for (int32_t id : stop_token_ids)
    TLLM_CHECK_FIELD(id >= 0 && id < vocab_size, "stop_token_ids", "stop_token_ids: token id ", id,
                     " is outside the vocabulary [0, ", vocab_size, ")");
  for (int32_t id : allowed_token_ids)
    TLLM_CHECK_FIELD(id >= 0 && id < vocab_size, "allowed_token_ids", "allowed_token_ids: token id ", id,
                     " is outside the vocabulary [0, ", vocab_size, ")");
  TLLM_CHECK_FIELD(allowed_token_ids.empty() || output_format.empty(), "allowed_token_ids",
                   "allowed_token_ids cannot be combined with structured output");
  for (const auto& w : bad_words_ids) {
    TLLM_CHECK_FIELD(!w.empty(), "bad_words", "bad_words: a word has no tokens");
    for (int32_t id : w)
      TLLM_CHECK_FIELD(id >= 0 && id < vocab_size, "bad_words", "bad_words: token id ", id,
                       " is outside the vocabulary [0, ", vocab_size, ")");
  }
}

std::vector<int32_t> bad_word_bans(const std::vector<std::vector<int32_t>>& words, const int32_t* output,
                                   size_t n_output, const int32_t* ahead, size_t n_ahead) {
  std::vector<int32_t> bans;
  const size_t n = n_output + n_ahead;
  auto at = [&](size_t i) { return i < n_output ? output[i] : ahead[i - n_output]; };  // i < n
  for (const auto& w : words) {
    const size_t prefix = w.size() - 1;
    if (prefix > n) continue;
    bool match = true;
    for (size_t j = 0; j < prefix && match; ++j) match = at(n - prefix + j) == w[j];
    if (match && std::find(bans.begin(), bans.end(), w.back()) == bans.end()) bans.push_back(w.back());
  }
  return bans;
}

}  // namespace tllm
