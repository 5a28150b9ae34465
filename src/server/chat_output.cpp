#include "server/chat_output.h"

#include <algorithm>

#include "core/error.h"

namespace tllm {
namespace {

constexpr std::string_view kThink = "<think>";
constexpr std::string_view kEndThink = "</think>";

}  // namespace

ReasoningParser reasoning_parser_from_name(const std::string& name) {
  if (name.empty()) return ReasoningParser::None;
  if (name == "qwen3") return ReasoningParser::Qwen3;
  if (name == "deepseek_r1") return ReasoningParser::DeepSeekR1;
  TLLM_CHECK_ARG(false, "unknown reasoning parser \"", name, "\" (supported: qwen3, deepseek_r1)");
  return ReasoningParser::None;
}

ChatMessageParts split_chat_output(std::string_view text, ReasoningParser reasoning, bool tools) {
  ChatMessageParts parts;
  std::string_view content = text;
  const bool opened = text.substr(0, kThink.size()) == kThink;
  if (reasoning == ReasoningParser::DeepSeekR1 || (reasoning == ReasoningParser::Qwen3 && opened)) {
    std::string_view rest = opened ? text.substr(kThink.size()) : text;
    const size_t end = rest.find(kEndThink);
    parts.reasoning = std::string(rest.substr(0, end));
    content = end == std::string_view::npos ? std::string_view() : rest.substr(end + kEndThink.size());
  }
  if (tools) {
    ParsedToolCalls p = parse_tool_calls(content);
    parts.content = std::move(p.content);
    parts.calls = std::move(p.calls);
  } else {
    parts.content = std::string(content);
  }
  return parts;
}

ChatOutputStream::Delta ChatOutputStream::push(std::string_view text, bool finished) {
  Delta d;
  if (phase_ == Phase::Undecided) {
    if (parser_ == ReasoningParser::None) {
      phase_ = Phase::Content;
    } else if (text.substr(0, kThink.size()) == kThink) {
      phase_ = Phase::Reasoning;
      sent_ = kThink.size();
    } else if (!finished && kThink.substr(0, text.size()) == text) {
      return d;  // still may become <think>
    } else {
      phase_ = parser_ == ReasoningParser::DeepSeekR1 ? Phase::Reasoning : Phase::Content;
    }
  }
  if (phase_ == Phase::Reasoning) {
    const size_t end = text.find(kEndThink, sent_);
    if (end != std::string_view::npos) {
      d.reasoning = std::string(text.substr(sent_, end - sent_));
      sent_ = end + kEndThink.size();
      phase_ = Phase::Content;
    } else {
      const size_t upto = finished ? text.size() : sent_ + text_before_tag(text.substr(sent_), kEndThink);
      d.reasoning = std::string(text.substr(sent_, upto - sent_));
      sent_ = upto;
      return d;
    }
  }
  // Content: with tools, up to what may start a <tool_call>; at the end the rest becomes calls.
  const std::string_view rest = text.substr(std::min(sent_, text.size()));
  if (tools_ && finished) {
    ParsedToolCalls p = parse_tool_calls(rest);
    d.content = std::move(p.content);
    d.calls = std::move(p.calls);
    sent_ = text.size();
  } else {
    const size_t upto = tools_ ? tool_call_free_prefix(rest) : rest.size();
    d.content = std::string(rest.substr(0, upto));
    sent_ += upto;
  }
  return d;
}

}  // namespace tllm
