#include "server/logprobs.h"

#include <algorithm>

#include "server/json_text.h"

namespace tllm {

TokenTable::TokenTable(int32_t size, std::function<std::string(int32_t)> token_bytes)
    : token_bytes_(std::move(token_bytes)),
      bytes_(static_cast<size_t>(std::max<int32_t>(size, 0))),
      once_(new std::once_flag[bytes_.size()]) {}

const std::string& TokenTable::bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= bytes_.size()) return empty_;
  std::call_once(once_[id], [&] { bytes_[id] = token_bytes_(id); });
  return bytes_[id];
}

std::string LogprobStyle::token_text(int32_t id) const {
  if (tokens_as_ids || !table) return "token_id:" + std::to_string(id);
  return sanitize_utf8(table->bytes(id));
}

void LogprobStyle::append_bytes(std::string& out, int32_t id) const {
  const std::string ids = tokens_as_ids || !table ? "token_id:" + std::to_string(id) : std::string();
  const std::string& raw = tokens_as_ids || !table ? ids : table->bytes(id);
  out.push_back('[');
  for (size_t i = 0; i < raw.size(); ++i) {
    if (i) out.push_back(',');
    append_json_number(out, static_cast<int64_t>(static_cast<unsigned char>(raw[i])));
  }
  out.push_back(']');
}

namespace {

void append_token_fields(std::string& out, int32_t token, float logprob, const LogprobStyle& style) {
  out += "\"token\":";
  append_json_string(out, style.token_text(token));
  out += ",\"logprob\":";
  append_json_number(out, static_cast<double>(logprob));
  out += ",\"bytes\":";
  style.append_bytes(out, token);
}

void append_item(std::string& list, const std::string& item) {
  if (!list.empty()) list.push_back(',');
  list += item;
}

}  // namespace

void append_chat_logprob(std::string& out, const TokenLogprob& lp, int top_n, const LogprobStyle& style) {
  out.push_back('{');
  append_token_fields(out, lp.token, lp.logprob, style);
  out += ",\"top_logprobs\":[";
  const size_t n = std::min(lp.top.size(), static_cast<size_t>(std::max(top_n, 0)));
  for (size_t i = 0; i < n; ++i) {
    if (i) out.push_back(',');
    out.push_back('{');
    append_token_fields(out, lp.top[i].first, lp.top[i].second, style);
    out.push_back('}');
  }
  out += "]}";
}

void append_chat_logprobs(std::string& out, const std::vector<TokenLogprob>& lps, int top_n,
                          const LogprobStyle& style) {
  out += "{\"content\":[";
  for (size_t i = 0; i < lps.size(); ++i) {
    if (i) out.push_back(',');
    append_chat_logprob(out, lps[i], top_n, style);
  }
  out += "]}";
}

void LegacyLogprobs::add_entry(int32_t token, const TokenLogprob* lp) {
  const std::string text = style_.token_text(token);
  std::string item;
  append_json_number(item, static_cast<int64_t>(offset_));
  append_item(text_offset_, item);
  offset_ += utf8_length(text);

  item.clear();
  if (lp) append_json_number(item, static_cast<double>(lp->logprob));
  else item = "null";
  append_item(token_logprobs_, item);

  item.clear();
  append_json_string(item, text);
  append_item(tokens_, item);

  item.clear();
  if (!lp) {
    item = "null";
  } else {
    // A dict of the top alternatives plus the chosen token (vLLM's legacy shape).
    item.push_back('{');
    bool first = true, has_chosen = false;
    for (const auto& [id, logprob] : lp->top) {
      if (!first) item.push_back(',');
      first = false;
      has_chosen |= id == lp->token;
      append_json_string(item, style_.token_text(id));
      item.push_back(':');
      append_json_number(item, static_cast<double>(logprob));
    }
    if (!has_chosen) {
      if (!first) item.push_back(',');
      append_json_string(item, text);
      item.push_back(':');
      append_json_number(item, static_cast<double>(lp->logprob));
    }
    item.push_back('}');
  }
  append_item(top_logprobs_, item);
  ++count_;
}

void append_prompt_logprobs(std::string& out, const std::vector<std::optional<TokenLogprob>>& lps, int top_n,
                            const LogprobStyle& style) {
  out.push_back('[');
  for (size_t i = 0; i < lps.size(); ++i) {
    if (i) out.push_back(',');
    if (!lps[i]) {
      out += "null";
      continue;
    }
    const TokenLogprob& lp = *lps[i];
    auto entry = [&](int32_t id, float logprob, int32_t rank) {
      out.push_back('"');
      append_json_number(out, static_cast<int64_t>(id));
      out += "\":{\"logprob\":";
      append_json_number(out, static_cast<double>(logprob));
      out += ",\"rank\":";
      if (rank > 0) append_json_number(out, static_cast<int64_t>(rank));
      else out += "null";
      out += ",\"decoded_token\":";
      append_json_string(out, style.token_text(id));
      out.push_back('}');
    };
    out.push_back('{');
    entry(lp.token, lp.logprob, lp.rank);
    const size_t n = std::min(lp.top.size(), static_cast<size_t>(std::max(top_n, 0)));
    for (size_t k = 0; k < n; ++k) {
      if (lp.top[k].first == lp.token) continue;
      out.push_back(',');
      entry(lp.top[k].first, lp.top[k].second, static_cast<int32_t>(k + 1));
    }
    out.push_back('}');
  }
  out.push_back(']');
}

std::vector<std::optional<TokenLogprob>> with_top_n(const std::vector<std::optional<TokenLogprob>>& lps, int top_n) {
  std::vector<std::optional<TokenLogprob>> out = lps;
  for (auto& lp : out)
    if (lp && lp->top.size() > static_cast<size_t>(std::max(top_n, 0))) lp->top.resize(std::max(top_n, 0));
  return out;
}

void LegacyLogprobs::add_prompt(const std::vector<int32_t>& prompt_ids,
                                const std::vector<std::optional<TokenLogprob>>& prompt_logprobs) {
  for (size_t i = 0; i < prompt_ids.size(); ++i) {
    const TokenLogprob* lp = i < prompt_logprobs.size() && prompt_logprobs[i] ? &*prompt_logprobs[i] : nullptr;
    add_entry(prompt_ids[i], lp);
  }
}

void LegacyLogprobs::add(const TokenLogprob& lp) { add_entry(lp.token, &lp); }

void LegacyLogprobs::append_json(std::string& out) const {
  out += "{\"text_offset\":[";
  out += text_offset_;
  out += "],\"token_logprobs\":[";
  out += token_logprobs_;
  out += "],\"tokens\":[";
  out += tokens_;
  out += "],\"top_logprobs\":[";
  out += top_logprobs_;
  out += "]}";
}

void LegacyLogprobs::clear() {
  count_ = 0;
  text_offset_.clear();
  token_logprobs_.clear();
  tokens_.clear();
  top_logprobs_.clear();
}

}  // namespace tllm
