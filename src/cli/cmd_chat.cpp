// tinyllm chat: a conversation with a model on the terminal (llama.cpp's conversation mode).
// Each line read is a user message; the reply streams to stdout as it is generated and joins
// the history, which the model's chat template renders whole for the next turn (the prefix
// cache keeps the earlier turns' KV, so a turn computes only what is new). Commands: /reset
// (forget the history), /system TEXT (set the system prompt and reset), /exit or end of input.
// Prompts, notices and timing go to stderr, so stdout holds the replies only.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

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

struct ChatArgs {
  EngineOptions engine;
  SamplingOptions sampling;
  std::string system;
};

// One reply to `messages` (rendered with the generation prompt), streamed to stdout.
std::string reply(LLMEngine& engine, const nlohmann::ordered_json& messages, const SamplingParams& params, int turn) {
  const std::string rendered = engine.chat_template()->render(messages, nullptr, true);
  const std::vector<int32_t> prompt = engine.tokenizer()->encode(rendered, /*add_special_tokens=*/false);
  engine.add_request("turn-" + std::to_string(turn), prompt, params);
  std::string text;
  int tokens = 0, cached = 0;
  FinishReason reason = FinishReason::None;
  const double t0 = now_seconds();
  while (engine.has_unfinished_requests()) {
    for (const RequestOutput& o : engine.step()) {
      std::cout << o.new_text << std::flush;
      text += o.new_text;
      tokens += static_cast<int>(o.new_token_ids.size());
      cached = o.num_cached_tokens;
      if (o.finished) reason = o.finish_reason;
    }
  }
  const double s = now_seconds() - t0;
  std::cout << "\n" << std::flush;
  std::fprintf(stderr, "[%d tokens, %.1f tok/s; prompt %zu tokens, %d from the cache; finish: %s]\n", tokens,
               s > 0 ? tokens / s : 0.0, prompt.size(), cached, finish_reason_name(reason));
  return text;
}

void run_chat(const ChatArgs& a) {
  check_utf8_text(a.system, "--system");  // what needs no model, before the load
  a.sampling.check_before_load();
  TLLM_CHECK_ARG(a.sampling.logprobs < 0, "chat does not print log-probs; use generate --json --logprobs N, or the "
                 "server's chat completions with \"logprobs\": true");
  LLMEngine engine(a.engine.resolve_for_generation("chat"));
  TLLM_CHECK_ARG(engine.tokenizer() != nullptr, "chat needs the model's tokenizer (tokenizer.json)");
  TLLM_CHECK_ARG(engine.chat_template() != nullptr, "chat: the model has no chat template");
  SamplingParams params = a.sampling.resolve(engine.generation_config());
  std::string system = a.system;
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  const auto reset = [&] {
    messages = nlohmann::ordered_json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  };
  reset();
  std::fprintf(stderr, "[chat with %s: a line is a message; /reset, /system TEXT, /exit]\n",
               a.engine.config.model_dir.c_str());
  std::string line;
  for (int turn = 0;; ++turn) {
    std::fprintf(stderr, "> ");
    std::fflush(stderr);
    if (!std::getline(std::cin, line) || line == "/exit" || line == "/quit") break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line == "/reset") {
      reset();
      std::fprintf(stderr, "[history cleared]\n");
      continue;
    }
    if (line.rfind("/system", 0) == 0 && (line.size() == 7 || line[7] == ' ')) {
      const std::string next = line.size() > 8 ? line.substr(8) : "";
      if (!next.empty()) {
        try {
          check_utf8_text(next, "the system prompt");
        } catch (const InvalidArgument& e) {
          std::fprintf(stderr, "error: %s (the system prompt is unchanged)\n", e.what());
          continue;
        }
      }
      system = next;
      reset();
      std::fprintf(stderr, "[system prompt %s; history cleared]\n", system.empty() ? "removed" : "set");
      continue;
    }
    const size_t before = messages.size();
    try {
      check_utf8_text(line, "the message");
      messages.push_back({{"role", "user"}, {"content", line}});
      const std::string text = reply(engine, messages, params, turn);
      messages.push_back({{"role", "assistant"}, {"content", text}});
    } catch (const InvalidArgument& e) {
      // Too long for the context, or bad UTF-8: this turn's message is dropped (if it was
      // added at all), the history kept.
      while (messages.size() > before) messages.erase(messages.end() - 1);
      std::fprintf(stderr, "error: %s (/reset starts over)\n", e.what());
    }
  }
}

}  // namespace

void register_chat_command(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  auto* cmd = app.add_subcommand("chat", "talk with a model on the terminal (its chat template, streamed replies)");
  args->sampling.max_tokens = 512;
  args->engine.add_to(cmd);
  args->sampling.add_to(cmd);
  cmd->add_option("--system", args->system, "system prompt");
  cmd->callback([args] { run_chat(*args); });
}

}  // namespace tllm
