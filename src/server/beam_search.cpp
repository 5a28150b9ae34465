#include "server/beam_search.h"

#include <algorithm>
#include <cmath>

namespace tllm {

double beam_score(const Beam& beam, int prompt_len, double length_penalty) {
  const int len = prompt_len + static_cast<int>(beam.tokens.size()) - (beam.ended ? 1 : 0);
  return beam.cum_logprob / std::pow(static_cast<double>(std::max(len, 1)), length_penalty);
}

std::vector<Beam> beam_search(int prompt_len, const BeamSearchParams& params, const std::vector<int32_t>& eos_ids,
                              const BeamStep& step) {
  const size_t width = static_cast<size_t>(std::max(params.beam_width, 1));
  auto best_first = [&](std::vector<Beam>& beams) {
    std::stable_sort(beams.begin(), beams.end(), [&](const Beam& a, const Beam& b) {
      return beam_score(a, prompt_len, params.length_penalty) > beam_score(b, prompt_len, params.length_penalty);
    });
  };
  std::vector<Beam> live(1), finished;
  for (int t = 0; t < params.max_tokens && !live.empty(); ++t) {
    std::vector<std::vector<int32_t>> seqs;
    for (const Beam& b : live) seqs.push_back(b.tokens);
    const std::vector<std::vector<std::pair<int32_t, float>>> next = step(seqs);
    std::vector<Beam> grown;
    for (size_t i = 0; i < live.size() && i < next.size(); ++i) {
      for (const auto& [token, logprob] : next[i]) {
        Beam b = live[i];
        b.tokens.push_back(token);
        b.cum_logprob += logprob;
        b.ended = !params.ignore_eos && std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end();
        (b.ended ? finished : grown).push_back(std::move(b));
      }
    }
    best_first(grown);
    if (grown.size() > width) grown.resize(width);
    live = std::move(grown);
  }
  for (Beam& b : live) finished.push_back(std::move(b));
  best_first(finished);
  if (finished.size() > width) finished.resize(width);
  return finished;
}

}  // namespace tllm
