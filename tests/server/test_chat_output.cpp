// How chat output splits into reasoning_content, content and tool_calls (server/chat_output.h),
// whole and streamed: the streamed deltas, concatenated, are the whole split for every way of
// cutting the text into pushes, and nothing that may still become a tag goes out early.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

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
      // Arguments with braces and escaped quotes in strings, nested, written before the name,
      // as a JSON string, null, missing, a number; several calls with text between them.
      "x<tool_call>\n{\"name\": \"f\", \"arguments\": {\"s\": \"a}b{\\\"c\", \"n\": [1, {\"d\": null}]}}\n</tool_call>",
      "<tool_call>{\"arguments\": {\"q\": 1.5e3}, \"name\": \"late\"}</tool_call> between <tool_call>{\"name\": "
      "\"s\", \"arguments\": \"{\\\"k\\\": 2}\"}</tool_call>",
      "<tool_call>{\"name\": \"n\", \"arguments\": null}</tool_call><tool_call>{\"name\": \"num\", \"arguments\": 12}",
      "<tool_call>{\"name\": \"cut\", \"arguments\": {\"a\": [1, 2",
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
          std::vector<ToolCall> calls;  // the deltas put together by index
          size_t at = 0;
          while (true) {
            at = trial == 0 ? at + 1 : std::min(t.size(), at + 1 + rng() % 5);  // trial 0: byte by byte
            const bool finished = at >= t.size();
            const auto d = s.push(std::string_view(t).substr(0, std::min(at, t.size())), finished);
            reasoning += d.reasoning;
            content += d.content;
            for (const ToolCallDelta& c : d.calls) {
              if (c.name) {
                ASSERT_EQ(c.index, static_cast<int>(calls.size()));
                calls.push_back({*c.name, ""});
              }
              ASSERT_LT(c.index, static_cast<int>(calls.size()));
              calls[static_cast<size_t>(c.index)].arguments += c.arguments;
            }
            if (finished) break;
            // Nothing of a tag goes out before it is known not to be one (at the end a block that
            // is not a call goes out as content).
            EXPECT_EQ(reasoning.find("</think>"), std::string::npos);
            if (tools) {
              EXPECT_EQ(content.find("<tool_call>"), std::string::npos);
            }
          }
          EXPECT_EQ(reasoning, whole.reasoning.value_or(""));
          if (t.find("\"cut\"") == std::string::npos || !tools || parser == ReasoningParser::DeepSeekR1) {
            EXPECT_EQ(content, whole.content);
          }
          // The arguments as written (streamed) or re-serialised (whole): the same JSON; a call
          // cut short has no whole form (the whole reply keeps its text as content).
          // (DeepSeek-R1's parser reads a text without </think> as reasoning: no calls there.)
          const bool cut = t.find("\"cut\"") != std::string::npos && tools && parser != ReasoningParser::DeepSeekR1;
          if (cut) {
            ASSERT_EQ(calls.size(), 1u);
            EXPECT_EQ(calls[0].arguments, "{\"a\": [1, 2");
            EXPECT_TRUE(whole.calls.empty());
            continue;
          }
          ASSERT_EQ(calls.size(), whole.calls.size());
          for (size_t i = 0; i < calls.size(); ++i) {
            EXPECT_EQ(calls[i].name, whole.calls[i].name);
            EXPECT_EQ(nlohmann::json::parse(calls[i].arguments), nlohmann::json::parse(whole.calls[i].arguments))
                << calls[i].arguments << " against " << whole.calls[i].arguments;
          }
        }
      }
    }
  }
}

// A call goes out while the model writes it: the name once its string is complete, the
// arguments as they come (byte by byte here), long before the closing tag.
TEST(ChatOutput, ToolCallsStreamAsTheyAreWritten) {
  const std::string t = "Let me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", "
                        "\"days\": 3}}\n</tool_call>";
  ChatOutputStream s(ReasoningParser::None, true);
  std::string content, args;
  size_t named_at = 0, first_args_at = 0;
  for (size_t n = 1; n <= t.size(); ++n) {
    const auto d = s.push(std::string_view(t).substr(0, n), n == t.size());
    content += d.content;
    for (const ToolCallDelta& c : d.calls) {
      EXPECT_EQ(c.index, 0);
      if (c.name) {
        EXPECT_EQ(*c.name, "get_weather");
        named_at = n;
      }
      if (!c.arguments.empty() && first_args_at == 0) first_args_at = n;
      args += c.arguments;
    }
  }
  EXPECT_EQ(content, "Let me check.");
  EXPECT_EQ(named_at, t.find("\", \"arguments") + 1);  // the byte that closed the name's string
  EXPECT_EQ(first_args_at, t.find("{\"city") + 1);      // the arguments' first byte
  EXPECT_EQ(args, "{\"city\": \"Paris\", \"days\": 3}");
  EXPECT_TRUE(s.has_calls());
}

// Once a call went out it stays, where the whole reply (vLLM's parser) turns to content because
// a later block is not a call; a stream without any named call gives the text as content.
TEST(ChatOutput, StreamedCallsStayOnceSent) {
  const std::string t = "a<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call><tool_call>oops</tool_call>";
  EXPECT_TRUE(split_chat_output(t, ReasoningParser::None, true).calls.empty());
  ChatOutputStream s(ReasoningParser::None, true);
  std::string content;
  std::vector<ToolCallDelta> calls;
  for (size_t n = 1; n <= t.size(); ++n) {
    auto d = s.push(std::string_view(t).substr(0, n), n == t.size());
    content += d.content;
    calls.insert(calls.end(), d.calls.begin(), d.calls.end());
  }
  EXPECT_EQ(content, "a");
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(*calls[0].name, "f");
  ChatOutputStream none(ReasoningParser::None, true);
  const std::string u = "a<tool_call>oops</tool_call> b";
  std::string all;
  for (size_t n = 1; n <= u.size(); ++n) all += none.push(std::string_view(u).substr(0, n), n == u.size()).content;
  EXPECT_EQ(all, u);
  EXPECT_FALSE(none.has_calls());
}

TEST(ChatOutput, ParserNames) {
  EXPECT_EQ(reasoning_parser_from_name(""), ReasoningParser::None);
  EXPECT_EQ(reasoning_parser_from_name("qwen3"), ReasoningParser::Qwen3);
  EXPECT_EQ(reasoning_parser_from_name("deepseek_r1"), ReasoningParser::DeepSeekR1);
  EXPECT_THROW(reasoning_parser_from_name("granite"), InvalidArgument);
}

}  // namespace
}  // namespace tllm
