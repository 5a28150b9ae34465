// What a chat choice's text becomes in the reply (vLLM's reasoning and tool parsers):
//  - with a reasoning parser, "<think>reasoning</think>content" splits into reasoning_content and
//    content. "qwen3": reasoning only when the text starts with <think> (Qwen3 with
//    enable_thinking false writes none); "deepseek_r1": the text starts in reasoning, <think>
//    optional (DeepSeek-R1's template opens it in the prompt). Reasoning cut short by max_tokens
//    stays reasoning.
//  - with tools in the request, <tool_call> blocks in the content become tool_calls
//    (server/tool_calls.h).
// ChatOutputStream gives the same parts incrementally: what may still turn out to be a tag is
// held back; tool calls go out in one piece at the end.
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
ChatMessageParts split_chat_output(std::string_view text, ReasoningParser reasoning, bool tools);

class ChatOutputStream {
 public:
  ChatOutputStream(ReasoningParser reasoning, bool tools) : parser_(reasoning), tools_(tools) {}
  struct Delta {
    std::string reasoning, content;
    std::vector<ToolCall> calls;
  };
  // text: the choice's whole text so far; finished: no more will come.
  Delta push(std::string_view text, bool finished);

 private:
  enum class Phase { Undecided, Reasoning, Content };
  ReasoningParser parser_;
  bool tools_;
  Phase phase_ = Phase::Undecided;
  size_t sent_ = 0;  // bytes of the text sent or consumed as tags
};

}  // namespace tllm
