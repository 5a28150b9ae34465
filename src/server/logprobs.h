// Logprobs in the two OpenAI shapes, written as JSON text:
//  - chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}
//  - completions (legacy): {"text_offset": [], "token_logprobs": [], "tokens": [], "top_logprobs": [{tok: lp}]}
// Token text is the token's own bytes, decoded alone (invalid UTF-8 of a partial character
// shows as U+FFFD in "token"; "bytes" keeps the raw bytes), or "token_id:<id>" when the
// request asked for return_tokens_as_token_ids.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"

namespace tllm {

// Raw bytes of each token id (special tokens included), decoded on first use and kept:
// a large vocabulary would take a second to decode up front. Thread-safe.
class TokenTable {
 public:
  TokenTable(int32_t size, std::function<std::string(int32_t)> token_bytes);
  const std::string& bytes(int32_t id) const;  // "" for ids outside [0, size)
  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }

 private:
  std::function<std::string(int32_t)> token_bytes_;
  mutable std::vector<std::string> bytes_;
  mutable std::unique_ptr<std::once_flag[]> once_;
  std::string empty_;
};

struct LogprobStyle {
  const TokenTable* table = nullptr;
  bool tokens_as_ids = false;
  std::string token_text(int32_t id) const;  // sanitized UTF-8, or "token_id:<id>"
  // The "bytes" list: raw token bytes, or those of "token_id:<id>".
  void append_bytes(std::string& out, int32_t id) const;
};

// One chat logprobs "content" entry; top_n alternatives (0..20) from lp.top.
void append_chat_logprob(std::string& out, const TokenLogprob& lp, int top_n, const LogprobStyle& style);
// {"content":[...]} for a run of tokens.
void append_chat_logprobs(std::string& out, const std::vector<TokenLogprob>& lps, int top_n,
                          const LogprobStyle& style);

// vLLM's prompt_logprobs list: null for the first prompt token, then per token a dict from
// token id (a string key) to {"logprob", "rank", "decoded_token"}: the prompt's own token first
// (its rank in the vocabulary), then the top_n most likely (ranks 1..top_n), each id once.
void append_prompt_logprobs(std::string& out, const std::vector<std::optional<TokenLogprob>>& lps, int top_n,
                            const LogprobStyle& style);
// The same list with at most top_n alternatives per entry (the engine computed one count for
// two consumers: completions' echo and prompt_logprobs).
std::vector<std::optional<TokenLogprob>> with_top_n(const std::vector<std::optional<TokenLogprob>>& lps, int top_n);

// Accumulates legacy completions logprobs; append_json writes what was added since the
// last clear(). text_offset keeps counting across clear() (streaming chunks).
class LegacyLogprobs {
 public:
  explicit LegacyLogprobs(LogprobStyle style) : style_(style) {}
  // Echoed prompt: entry i is the logprob of prompt_ids[i] (entry 0 has none).
  void add_prompt(const std::vector<int32_t>& prompt_ids,
                  const std::vector<std::optional<TokenLogprob>>& prompt_logprobs);
  void add(const TokenLogprob& lp);
  bool empty() const { return count_ == 0; }
  void append_json(std::string& out) const;
  void clear();

 private:
  void add_entry(int32_t token, const TokenLogprob* lp);
  LogprobStyle style_;
  size_t count_ = 0;
  size_t offset_ = 0;  // characters of text so far
  std::string text_offset_, token_logprobs_, tokens_, top_logprobs_;  // comma-joined items
};

}  // namespace tllm
