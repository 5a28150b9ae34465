// tinyllm generate: prompts in (text or ids), tokens out; --json prints one object per
// generated token and a summary line.
#include <cstdio>
#include <iostream>
#include <memory>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/timer.h"
#include "engine/engine.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

namespace {

struct GenerateArgs {
  EngineOptions engine;
  SamplingOptions sampling;
  std::vector<std::string> prompts;
  std::vector<std::string> prompt_ids;
  bool chat = false;
  bool json = false;
};

void run_generate(const GenerateArgs& a) {
  TLLM_CHECK_ARG(!a.prompts.empty() || !a.prompt_ids.empty(), "give --prompt TEXT or --prompt-ids 1,2,3");
  // What needs no model is checked before the load.
  for (const std::string& text : a.prompts) check_utf8_text(text, "--prompt");
  std::vector<std::vector<int32_t>> id_prompts;
  for (const std::string& ids : a.prompt_ids) id_prompts.push_back(parse_id_list(ids));
  a.sampling.check_before_load();
  TLLM_CHECK_ARG(a.json || a.sampling.logprobs < 0, "--logprobs are printed with --json; add --json");
  const double t_load = now_seconds();
  LLMEngine engine(a.engine.resolve_for_generation("generate"));
  const double load_s = now_seconds() - t_load;
  const Tokenizer* tok = engine.tokenizer();

  std::vector<std::vector<int32_t>> prompts;
  for (const std::string& text : a.prompts) {
    TLLM_CHECK_ARG(tok != nullptr, "--prompt needs a tokenizer; this model has none (use --prompt-ids)");
    std::string rendered = text;
    if (a.chat) {
      TLLM_CHECK_ARG(engine.chat_template() != nullptr, "--chat: the model has no chat template");
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      messages.push_back({{"role", "user"}, {"content", text}});
      rendered = engine.chat_template()->render(messages, nullptr, true);
    }
    prompts.push_back(tok->encode(rendered, /*add_special_tokens=*/!a.chat));
  }
  for (std::vector<int32_t>& ids : id_prompts) {
    check_ids_in_vocab(ids, engine.vocab_size(), "--prompt-ids");
    prompts.push_back(std::move(ids));
  }

  SamplingParams params = a.sampling.resolve(engine.generation_config());
  params.detokenize = tok != nullptr;
  for (size_t i = 0; i < prompts.size(); ++i) engine.add_request(std::to_string(i), prompts[i], params);

  const bool stream_text = !a.json && prompts.size() == 1;
  std::vector<std::string> texts(prompts.size());
  std::vector<int> generated(prompts.size(), 0);
  std::vector<std::string> reasons(prompts.size());
  std::string failure;  // the first request that ended with an error (its output so far is printed)
  const double t0 = now_seconds();
  double t_first = 0;
  int total = 0;
  while (engine.has_unfinished_requests()) {
    for (RequestOutput& o : engine.step()) {
      const size_t i = std::stoul(o.request_id);
      if (t_first == 0 && !o.new_token_ids.empty()) t_first = now_seconds();
      for (size_t k = 0; k < o.new_token_ids.size(); ++k) {
        ++generated[i];
        ++total;
        if (a.json) {
          nlohmann::ordered_json j;
          if (prompts.size() > 1) j["index"] = i;
          j["token_id"] = o.new_token_ids[k];
          // The text of an event belongs to its (single) token.
          j["text"] = k + 1 == o.new_token_ids.size() ? o.new_text : "";
          if (k < o.new_logprobs.size()) {
            j["logprob"] = o.new_logprobs[k].logprob;
            nlohmann::ordered_json top = nlohmann::ordered_json::array();
            for (auto& [id, lp] : o.new_logprobs[k].top) top.push_back({{"token_id", id}, {"logprob", lp}});
            j["top_logprobs"] = top;
          }
          std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        }
      }
      // Without a tokenizer there is no text: the ids are the output (they printed as nothing).
      std::string piece = o.new_text;
      if (!tok)
        for (int32_t id : o.new_token_ids) piece += (texts[i].empty() && piece.empty() ? "" : " ") + std::to_string(id);
      texts[i] += piece;
      if (stream_text) std::cout << piece << std::flush;
      if (o.finished) reasons[i] = finish_reason_name(o.finish_reason);
      if (o.finished && !o.error.empty() && failure.empty())
        failure = "request " + o.request_id + " failed: " + o.error;
    }
  }
  const double t_end = now_seconds();
  const double decode_s = t_end - (t_first > 0 ? t_first : t0);
  const int decode_tokens = total - static_cast<int>(prompts.size());
  size_t prompt_tokens = 0;
  for (auto& p : prompts) prompt_tokens += p.size();
  const EngineStats stats = engine.stats();
  if (a.json) {
    nlohmann::ordered_json s;
    s["prompt_tokens"] = prompt_tokens;
    s["generated_tokens"] = total;
    s["finish_reasons"] = reasons;
    s["load_s"] = load_s;
    s["time_to_first_token_s"] = t_first > 0 ? t_first - t0 : 0.0;
    s["decode_tokens_per_s"] = decode_tokens > 0 && decode_s > 0 ? decode_tokens / decode_s : 0.0;
    s["tokens_per_s"] = total / std::max(1e-9, t_end - t0);
    s["backend"] = engine.backend_name();
    if (stats.spec_num_drafts > 0) {
      s["spec_num_drafts"] = stats.spec_num_drafts;
      s["spec_num_draft_tokens"] = stats.spec_num_draft_tokens;
      s["spec_num_accepted_tokens"] = stats.spec_num_accepted_tokens;
    }
    std::cout << nlohmann::ordered_json{{"summary", s}}.dump() << "\n";
    TLLM_CHECK(failure.empty(), failure);
    return;
  }
  if (stream_text) {
    std::cout << "\n";
  } else {
    for (size_t i = 0; i < prompts.size(); ++i)
      std::cout << "[" << i << "] " << texts[i] << "\n";
  }
  std::fprintf(stderr, "[%d tokens in %.2f s: first token %.3f s, decode %.1f tok/s, finish: %s; %s]\n", total,
               t_end - t0, t_first > 0 ? t_first - t0 : 0.0,
               decode_tokens > 0 && decode_s > 0 ? decode_tokens / decode_s : 0.0,
               reasons.size() == 1 ? reasons[0].c_str() : "see above", engine.backend_name().c_str());
  if (stats.spec_num_drafts > 0)
    std::fprintf(stderr, "[speculative decoding: %llu of %llu drafts accepted (%.1f%%), %.2f tokens per verification]\n",
                 static_cast<unsigned long long>(stats.spec_num_accepted_tokens),
                 static_cast<unsigned long long>(stats.spec_num_draft_tokens),
                 100.0 * stats.spec_num_accepted_tokens / std::max<uint64_t>(1, stats.spec_num_draft_tokens),
                 1.0 + double(stats.spec_num_accepted_tokens) / stats.spec_num_drafts);
  TLLM_CHECK(failure.empty(), failure);
}

}  // namespace

void register_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "generate text for one or several prompts");
  args->engine.add_to(cmd);
  args->sampling.add_to(cmd);
  cmd->add_option("--prompt", args->prompts, "prompt text (repeatable: prompts run together)");
  cmd->add_option("--prompt-ids", args->prompt_ids, "prompt token ids, comma-separated (repeatable)");
  cmd->add_flag("--chat", args->chat, "wrap each prompt as a user message with the chat template");
  cmd->add_flag("--json", args->json, "one JSON object per token, then a summary line");
  cmd->callback([args] { run_generate(*args); });
}

}  // namespace tllm
