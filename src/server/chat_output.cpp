#include "server/chat_output.h"

#include <algorithm>

#include "core/error.h"
#include "server/tool_calls.h"

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

ChatMessageParts split_chat_output(std::string_view text, ReasoningParser reasoning, bool tools,
                                   ToolCallParser format) {
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
    ParsedToolCalls p = parse_tool_calls(content, format);
    parts.content = std::move(p.content);
    parts.calls = std::move(p.calls);
  } else {
    parts.content = std::string(content);
  }
  return parts;
}

std::vector<OutputPiece> format_after_reasoning(std::vector<OutputPiece> format, ReasoningParser reasoning) {
  if (reasoning == ReasoningParser::None || format.empty()) return format;
  std::vector<OutputPiece> thought;
  if (reasoning == ReasoningParser::Qwen3) thought.push_back(OutputPiece::text(std::string(kThink)));
  thought.push_back(OutputPiece::text_through(std::string(kEndThink)));
  // The format, or one or two newlines and then it (all followed at once: a format that starts
  // with a newline keeps it); nested whole, since a format that starts with free text repeats.
  const OutputPiece whole = OutputPiece::one_of_formats({format});
  thought.push_back(OutputPiece::one_of_formats(
      {format, {OutputPiece::text("\n"), whole}, {OutputPiece::text("\n\n"), whole}}));
  if (reasoning == ReasoningParser::DeepSeekR1) return thought;
  std::vector<std::vector<OutputPiece>> either;
  either.push_back(std::move(thought));
  either.push_back(std::move(format));
  return {OutputPiece::one_of_formats(std::move(either))};
}

ChatOutputStream::Delta ChatOutputStream::push(std::string_view text, bool finished) {
  Delta d = push_all(text, finished);
  if (max_calls_ >= 0)
    std::erase_if(d.calls, [&](const ToolCallDelta& c) { return c.index >= max_calls_; });
  return d;
}

ChatOutputStream::Delta ChatOutputStream::push_all(std::string_view text, bool finished) {
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
  if (tools_ && format_ == ToolCallParser::Llama3Json) {
    push_llama3(text, finished, d);
    return d;
  }
  // Content: with tools, up to the first <tool_call> (or what may start one); then calls.
  if (first_tag_ == std::string_view::npos) {
    const std::string_view rest = text.substr(std::min(sent_, text.size()));
    const size_t n = !tools_   ? rest.size()
                     : finished ? std::min(rest.find(kToolCallOpen), rest.size())
                                : tool_call_free_prefix(rest);
    d.content = std::string(rest.substr(0, n));
    sent_ += n;
    if (!tools_ || !rest.substr(n).starts_with(kToolCallOpen)) return d;
    first_tag_ = sent_;
  }
  push_calls(text, finished, d);
  return d;
}

void keep_first_calls(ChatMessageParts& parts, size_t n) {
  if (parts.calls.size() > n) parts.calls.resize(n);
}

void ChatOutputStream::push_calls(std::string_view text, bool finished, Delta& d) {
  constexpr size_t npos = std::string_view::npos;
  while (true) {
    if (block_ == npos) {
      const size_t open = text.find(kToolCallOpen, sent_);
      if (open == npos) break;  // text between or after blocks is not content (as the whole parse)
      open_block(open + kToolCallOpen.size());
    }
    const size_t close = text.find(kToolCallClose, block_);
    const bool ends = close != npos || finished;
    const size_t body_end = close != npos ? close
                            : finished    ? text.size()
                                          : block_ + text_before_tag(text.substr(block_), kToolCallClose);
    const std::string_view body = text.substr(block_, body_end - block_);
    emit_call(body, scan_call_body(body), ends, d);
    if (!ends) break;
    sent_ = close != npos ? close + kToolCallClose.size() : text.size();
    block_ = npos;
    if (close == npos) break;
  }
  // No block named a function by the end: the text from the first tag is content, as the whole
  // parse has it (or its calls, should the whole parse find some the scan did not).
  if (finished && calls_ == 0) {
    ParsedToolCalls p = parse_tool_calls(text.substr(first_tag_));
    d.content += p.content;
    for (ToolCall& c : p.calls) d.calls.push_back({calls_++, std::move(c.name), std::move(c.arguments)});
    sent_ = text.size();
  }
}

void ChatOutputStream::open_block(size_t body) {
  block_ = body;
  named_ = args_whole_ = false;
  args_sent_ = 0;
}

void ChatOutputStream::emit_call(std::string_view body, const CallBodyScan& scan, bool ends, Delta& d) {
  if (!named_ && scan.name && !scan.bad) {
    d.calls.push_back({calls_++, *scan.name, ""});
    named_ = true;
  }
  if (!named_) return;
  std::string fragment;
  // A number or literal goes out once whole (what has arrived of it may still turn out not to
  // be one: "t" of "text"); an object or array as it is written.
  const bool container = scan.args == CallBodyScan::Args::Raw && scan.args_end > scan.args_begin &&
                         (body[scan.args_begin] == '{' || body[scan.args_begin] == '[');
  if (scan.args == CallBodyScan::Args::Raw && (container || scan.args_complete)) {
    const size_t len = scan.args_end - scan.args_begin;
    if (len > args_sent_) fragment = std::string(body.substr(scan.args_begin + args_sent_, len - args_sent_));
    args_sent_ = std::max(args_sent_, len);
  } else if (!args_whole_ && scan.args == CallBodyScan::Args::String && scan.args_complete) {
    fragment = scan.args_string;  // a JSON string of arguments: its text, decoded
    args_whole_ = true;
  } else if (!args_whole_ && ends && scan.args != CallBodyScan::Args::String) {
    fragment = "{}";  // none, or null, by the block's end: "{}", as the whole parse
    args_whole_ = true;
  }
  if (!fragment.empty()) {
    if (!d.calls.empty() && d.calls.back().index == calls_ - 1) d.calls.back().arguments += fragment;
    else d.calls.push_back({calls_ - 1, std::nullopt, std::move(fragment)});
  }
}

void ChatOutputStream::push_llama3(std::string_view text, bool finished, Delta& d) {
  constexpr size_t npos = std::string_view::npos;
  auto skip_space = [&](size_t i) { return skip_json_space(text, i); };
  auto as_content = [&] {  // everything not sent yet is content from here on
    plain_ = true;
    d.content += std::string(text.substr(std::min(sent_, text.size())));
    sent_ = text.size();
  };
  if (plain_) return as_content();
  if (first_tag_ == npos) {
    // Undecided: spaces, then the optional tag, then '{' makes the reply calls.
    size_t i = skip_space(sent_);
    std::string_view rest = text.substr(i);
    if (rest.starts_with(kPythonTag)) {
      i = skip_space(i + kPythonTag.size());
      rest = text.substr(i);
    } else if (!finished && !rest.empty() && kPythonTag.starts_with(rest)) {
      return;  // may still become the tag
    }
    if (rest.empty() && !finished) return;  // spaces (and the tag) so far
    if (rest.empty() || rest[0] != '{') return as_content();
    first_tag_ = i;
    open_block(i);
  }
  while (block_ != npos) {
    const std::string_view body = text.substr(block_);
    const CallBodyScan scan = scan_call_body(body, /*parameters_key=*/true);
    // The first object is not a call (not an object of string keys, or one that ended without
    // a name): the reply is content, as the whole parse has it.
    if (calls_ == 0 && (scan.bad || (scan.end != npos && !scan.name))) return as_content();
    const bool ends = scan.end != npos || finished;
    emit_call(body, scan, ends, d);
    if (scan.end == npos) break;  // more of this object to come (or the reply ended inside it)
    // After a call: "; {" starts the next one; anything else ends the calls (the rest is dropped).
    size_t j = skip_space(block_ + scan.end);
    if (j == text.size() && !finished) break;  // wait for what follows
    if (j < text.size() && text[j] == ';') {
      j = skip_space(j + 1);
      if (j == text.size() && !finished) break;
      if (j < text.size() && text[j] == '{') {
        open_block(j);
        continue;
      }
    }
    block_ = npos;
  }
  // sent_ stays where the reply's content starts (nothing of it went out). No object named a
  // function by the end: the whole parse decides (content, or its calls).
  if (finished && calls_ == 0) {
    ParsedToolCalls p = parse_llama3_json_calls(text.substr(std::min(sent_, text.size())));
    d.content += p.content;
    for (ToolCall& c : p.calls) d.calls.push_back({calls_++, std::move(c.name), std::move(c.arguments)});
    sent_ = text.size();
  }
}

}  // namespace tllm
