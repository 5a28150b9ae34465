// use_beam_search on /v1/completions and /v1/chat/completions: the search of
// server/beam_search.h, each step one Generation of one greedy token per live beam (2 x width
// logprobs), its beams' prompts the request's prompt plus their tokens.
#include <algorithm>
#include <cmath>

#include "server/beam_search.h"
#include "server/errors.h"
#include "server/serving.h"

namespace tllm {
namespace {

struct ClientLeft {};

}  // namespace

std::shared_ptr<Generation> beam_search_generation(ServingState& state, const std::string& id,
                                                   std::vector<PromptPlan> plans, const GenerationRequest& r,
                                                   const ClientConnection& conn) {
  const std::vector<int32_t> eos = state.engine->engine().eos_token_ids();
  std::vector<ChoiceState> choices;
  int steps = 0;
  try {
    for (size_t p = 0; p < plans.size(); ++p) {
      const PromptPlan& plan = plans[p];
      BeamSearchParams bp;
      bp.beam_width = r.n;
      bp.max_tokens = plan.params.max_tokens;
      bp.ignore_eos = r.ignore_eos;
      bp.length_penalty = r.length_penalty;
      SamplingParams step_params;
      step_params.temperature = 0.0f;
      step_params.max_tokens = 1;
      step_params.ignore_eos = true;
      step_params.logprobs = 2 * r.n;
      step_params.detokenize = false;
      step_params.cache_salt = plan.params.cache_salt;
      auto step = [&](const std::vector<std::vector<int32_t>>& beams) {
        std::vector<PromptPlan> requests;
        for (const std::vector<int32_t>& b : beams) {
          PromptPlan s;
          s.token_ids = plan.token_ids;
          s.token_ids.insert(s.token_ids.end(), b.begin(), b.end());
          s.params = step_params;
          requests.push_back(std::move(s));
        }
        Generation g(state, id + "-beam" + std::to_string(steps++), std::move(requests), 1);
        if (!wait_for_completion(g, conn)) throw ClientLeft{};
        if (const std::string err = g.error(); !err.empty())
          throw internal_error("The engine failed a beam search step: " + err);
        std::vector<std::vector<std::pair<int32_t, float>>> next;
        for (const ChoiceState& c : g.choices())
          next.push_back(c.logprobs.empty() ? std::vector<std::pair<int32_t, float>>{} : c.logprobs[0].top);
        // No candidate, or NaN log-probs (NaN logits: a model whose weights overflow) would end
        // the search with no beam at all (a response without choices) or rank beams by NaN.
        for (const auto& cands : next)
          if (cands.empty() || std::any_of(cands.begin(), cands.end(), [](const auto& c) { return std::isnan(c.second); }))
            throw internal_error("beam search: the model's log-probs are not finite (NaN): its weights or activations "
                                 "overflow");
        return next;
      };
      const std::vector<Beam> best = beam_search(static_cast<int>(plan.token_ids.size()), bp, eos, step);
      for (size_t i = 0; i < best.size(); ++i) {
        const Beam& b = best[i];
        ChoiceState c;
        c.index = static_cast<int>(choices.size());  // p x n + i unless a prompt has fewer beams
        c.prompt_index = static_cast<int>(p);
        c.num_prompt_tokens = static_cast<int>(plan.token_ids.size());
        c.token_ids = b.tokens;
        const std::vector<int32_t> shown(b.tokens.begin(), b.tokens.end() - (b.ended ? 1 : 0));
        if (state.tokenizer) c.text = state.tokenizer->decode(shown, r.skip_special_tokens);
        c.finish_reason = b.ended ? FinishReason::Stop : FinishReason::Length;
        c.started = true;
        choices.push_back(std::move(c));
      }
    }
  } catch (const ClientLeft&) {
    return nullptr;
  }
  return std::make_shared<Generation>(state, id, std::move(plans), std::move(choices));
}

}  // namespace tllm
