// vLLM's beam search (`use_beam_search` on /v1/completions and /v1/chat/completions), as its
// engine client runs it: every step extends each of the `beam_width` live beams by one token
// through an ordinary engine request (max_tokens 1, greedy, the 2 x width most likely tokens
// with their logprobs; the prefix cache keeps the beams' common prompt computed), ranks all
// extensions by score, and keeps the best `beam_width`; an extension by an end-of-sequence
// token leaves as a finished beam (unless ignore_eos). After max_tokens steps the finished and
// the live beams together are ranked, and the best `beam_width` are the answer.
// Score (vLLM's get_beam_search_score): cumulative logprob / L^length_penalty, with L the
// prompt's and the beam's tokens, not counting an ending eos. Ties keep the earlier beam and,
// within a beam, the more likely token (a stable sort). Beam search is deterministic:
// temperature, top-p / top-k / min-p and seed do not apply.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace tllm {

struct BeamSearchParams {
  int beam_width = 1;
  int max_tokens = 16;
  bool ignore_eos = false;
  double length_penalty = 1.0;
};

struct Beam {
  std::vector<int32_t> tokens;  // generated, an ending eos included
  double cum_logprob = 0.0;
  bool ended = false;  // by an end-of-sequence token
};

double beam_score(const Beam& beam, int prompt_len, double length_penalty);

// One step: for each beam's generated tokens (after the prompt), the most likely next tokens
// with their logprobs (at least 2 x beam_width of them, most likely first).
using BeamStep =
    std::function<std::vector<std::vector<std::pair<int32_t, float>>>(const std::vector<std::vector<int32_t>>& beams)>;

// The best beams, best first (at most beam_width).
std::vector<Beam> beam_search(int prompt_len, const BeamSearchParams& params, const std::vector<int32_t>& eos_ids,
                              const BeamStep& step);

}  // namespace tllm
