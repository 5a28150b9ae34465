// How chat output splits into reasoning_content, content and tool_calls (server/chat_output.h),
// whole and streamed: the streamed deltas, concatenated, are the whole split for every way of
// cutting the text into pushes, and nothing that may still become a tag goes out early.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "server/chat_output.h"

namespace tllm {
namespace {

TEST(ChatOutput, SplitsReasoningAsVllmsParsers) {
  const auto q = split_chat_output("<think>\nLet me see.\n</think>\n\nParis.", ReasoningParser::Qwen3, false);
  ASSERT_TRUE(q.reasoning);
  EXPECT_EQ(*q.reasoning, "\nLet me see.\n");
  EXPECT_EQ(q.content, "\n\nParis.");
  // Qwen3 without <think> (enable_thinking false): all content.
  const auto plain = split_chat_output("Paris. </think> x", ReasoningParser::Qwen3, false);
  EXPECT_FALSE(plain.reasoning);
  EXPECT_EQ(plain.content, "Paris. </think> x");
  // DeepSeek-R1: reasoning from the start, <think> optional; cut short, it stays reasoning.
  const auto r1 = split_chat_output("thinking...</think>answer", ReasoningParser::DeepSeekR1, false);
  EXPECT_EQ(*r1.reasoning, "thinking...");
  EXPECT_EQ(r1.content, "answer");
  const auto cut = split_chat_output("<think>still thinking", ReasoningParser::Qwen3, false);
  EXPECT_EQ(*cut.reasoning, "still thinking");
  EXPECT_EQ(cut.content, "");
  // Without a parser nothing splits; tool calls come from the content only.
  EXPECT_EQ(split_chat_output("<think>a</think>b", ReasoningParser::None, false).content, "<think>a</think>b");
  const auto calls = split_chat_output("<think>call f</think>\n<tool_call>{\"name\": \"f\"}</tool_call>",
                                       ReasoningParser::Qwen3, true);
  EXPECT_EQ(*calls.reasoning, "call f");
  EXPECT_EQ(calls.content, "\n");
  ASSERT_EQ(calls.calls.size(), 1u);
  EXPECT_EQ(calls.calls[0].name, "f");
}

TEST(ChatOutput, StreamedDeltasAddUpToTheWholeSplit) {
  const std::vector<std::string> texts = {
      "<think>\nhmm <thin </thi x\n</think>\n\nanswer <tool_ and <b>",
      "<think>never closed </th",
      "<th",
      "<thinking is not a tag",
      "plain </think> text",
      "<think>a</think>b<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}}</tool_call>",
      "before <tool_call>{\"name\": \"g\"}</tool_call><tool_call>{\"name\": \"h\"}",
      "text <tool_call>not a call</tool_call>",
  };
  std::mt19937 rng(3);
  for (ReasoningParser parser : {ReasoningParser::None, ReasoningParser::Qwen3, ReasoningParser::DeepSeekR1}) {
    for (bool tools : {false, true}) {
      for (const std::string& t : texts) {
        const ChatMessageParts whole = split_chat_output(t, parser, tools);
        for (int trial = 0; trial < 20; ++trial) {
          SCOPED_TRACE(t + " parser " + std::to_string(static_cast<int>(parser)) + " tools " + std::to_string(tools) +
                       " trial " + std::to_string(trial));
          ChatOutputStream s(parser, tools);
          std::string reasoning, content;
          std::vector<ToolCall> calls;
          size_t at = 0;
          while (true) {
            at = trial == 0 ? at + 1 : std::min(t.size(), at + 1 + rng() % 5);  // trial 0: byte by byte
            const bool finished = at >= t.size();
            const auto d = s.push(std::string_view(t).substr(0, std::min(at, t.size())), finished);
            reasoning += d.reasoning;
            content += d.content;
            calls.insert(calls.end(), d.calls.begin(), d.calls.end());
            if (finished) break;
            // Nothing of a tag goes out before it is known not to be one (at the end a block that
            // is not a call goes out as content).
            EXPECT_EQ(reasoning.find("</think>"), std::string::npos);
            if (tools) {
              EXPECT_EQ(content.find("<tool_call>"), std::string::npos);
            }
          }
          EXPECT_EQ(reasoning, whole.reasoning.value_or(""));
          EXPECT_EQ(content, whole.content);
          ASSERT_EQ(calls.size(), whole.calls.size());
          for (size_t i = 0; i < calls.size(); ++i) EXPECT_EQ(calls[i].name, whole.calls[i].name);
        }
      }
    }
  }
}

TEST(ChatOutput, ParserNames) {
  EXPECT_EQ(reasoning_parser_from_name(""), ReasoningParser::None);
  EXPECT_EQ(reasoning_parser_from_name("qwen3"), ReasoningParser::Qwen3);
  EXPECT_EQ(reasoning_parser_from_name("deepseek_r1"), ReasoningParser::DeepSeekR1);
  EXPECT_THROW(reasoning_parser_from_name("granite"), InvalidArgument);
}

}  // namespace
}  // namespace tllm
