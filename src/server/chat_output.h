// What a chat choice's text becomes in the reply (vLLM's reasoning and tool parsers):
//  - with a reasoning parser, "<think>reasoning</think>content" splits into reasoning_content and
//    content. "qwen3": reasoning only when the text starts with <think> (Qwen3 with
//    enable_thinking false writes none); "deepseek_r1": the text starts in reasoning, <think>
//    optional (DeepSeek-R1's template opens it in the prompt). Reasoning cut short by max_tokens
//    stays reasoning.
//  - with tools in the request, <tool_call> blocks in the content (hermes), or a reply that is
//    call objects (llama3_json), become tool_calls (server/tool_calls.h).
// ChatOutputStream gives the same parts incrementally: what may still turn out to be a tag is
// held back; a tool call goes out as soon as its name is complete, then its arguments as they
// are written (server/tool_calls.h, ToolCallDelta). Where a reply's blocks are all calls the
// streamed calls are the whole reply's. Where some block is not (not a JSON object naming a
// function), the whole reply keeps the text as content, as vLLM's parser; the stream does too
// when no block named a function, but once a call has gone out it stays: a later block that is
// not a call is dropped, and a call's text after its arguments is not checked.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/tool_calls.h"

namespace tllm {

enum class ReasoningParser { None, Qwen3, DeepSeekR1 };
// "" -> None; "qwen3", "deepseek_r1"; throws InvalidArgument naming the others.
ReasoningParser reasoning_parser_from_name(const std::string& name);

struct ChatMessageParts {
  std::optional<std::string> reasoning;  // set with a reasoning parser when the text had reasoning
  std::string content;
  std::vector<ToolCall> calls;
};
ChatMessageParts split_chat_output(std::string_view text, ReasoningParser reasoning, bool tools,
                                   ToolCallParser format = ToolCallParser::Hermes);

// A structured output (response_format, guided_*, tool calls) under a reasoning parser applies
// to the content, after the reasoning, as vLLM's does: "qwen3" takes "<think>reasoning</think>"
// first or no reasoning, "deepseek_r1" reasoning up to "</think>" (its "<think>" optional, as
// text). One or two newlines may come between "</think>" and the format, as Qwen3 writes them;
// they stay at the start of the content, as vLLM's parsers keep them (a JSON reader skips them;
// a guided_choice client compares the stripped text). The reasoning itself is free text.
// Without a parser, or with no format, `format` as it is.
std::vector<OutputPiece> format_after_reasoning(std::vector<OutputPiece> format, ReasoningParser reasoning);

class ChatOutputStream {
 public:
  ChatOutputStream(ReasoningParser reasoning, bool tools, ToolCallParser format = ToolCallParser::Hermes)
      : parser_(reasoning), tools_(tools), format_(format) {}
  struct Delta {
    std::string reasoning, content;
    std::vector<ToolCallDelta> calls;
  };
  // text: the choice's whole text so far; finished: no more will come.
  Delta push(std::string_view text, bool finished);
  // Whether a tool call has gone out (the finish reason is then "tool_calls").
  bool has_calls() const { return calls_ > 0; }
  // At most `n` calls go out (the Responses API's parallel_tool_calls false: 1); the deltas of
  // later ones are dropped, as keep_first_calls drops them from a whole reply.
  void limit_calls(int n) { max_calls_ = n; }

 private:
  enum class Phase { Undecided, Reasoning, Content };
  Delta push_all(std::string_view text, bool finished);  // push, before limit_calls
  void push_calls(std::string_view text, bool finished, Delta& d);
  void push_llama3(std::string_view text, bool finished, Delta& d);
  // The deltas of the open call whose body (object) starts at body[0]: its name once complete,
  // then its arguments as they grow; `ends`: the body is whole.
  void emit_call(std::string_view body, const CallBodyScan& scan, bool ends, Delta& d);
  // A call's body (object) starts at `body`: nothing of it has gone out yet.
  void open_block(size_t body);

  ReasoningParser parser_;
  bool tools_;
  ToolCallParser format_;
  bool plain_ = false;  // llama3_json: the reply is content
  Phase phase_ = Phase::Undecided;
  size_t sent_ = 0;  // bytes of the text sent or consumed as tags
  // Tool calls (content phase, after the first <tool_call>): the calls sent, the first tag's
  // offset, and the open block: its body's offset, whether its call went out, how much of its
  // arguments text did, and whether they went out whole (a JSON string decoded, or "{}").
  int calls_ = 0;
  size_t first_tag_ = std::string_view::npos;
  size_t block_ = std::string_view::npos;
  bool named_ = false;
  size_t args_sent_ = 0;
  bool args_whole_ = false;
  int max_calls_ = -1;  // no limit
};

// Keeps the first `n` calls of a whole reply (parallel_tool_calls false: 1).
void keep_first_calls(ChatMessageParts& parts, size_t n);

}  // namespace tllm
