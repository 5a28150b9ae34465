// Hermes-format tool calls in chat output (server/tool_calls.h), against vLLM's hermes parser
// behaviour: content before the first <tool_call>, one call per block, an unclosed last block,
// arguments as a JSON text, no calls at all when a block is not a call; the streaming hold-back.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/tool_calls.h"

namespace tllm {
namespace {

TEST(ToolCalls, ParsesHermesBlocks) {
  const ParsedToolCalls p = parse_tool_calls(
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par\xC3\xADs\", \"days\": 3}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"now\"}\n</tool_call>");
  EXPECT_EQ(p.content, "Let me check.\n");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(nlohmann::json::parse(p.calls[0].arguments), nlohmann::json::parse("{\"city\": \"Par\xC3\xADs\", \"days\": 3}"));
  EXPECT_EQ(p.calls[1].name, "now");
  EXPECT_EQ(p.calls[1].arguments, "{}");
  // Arguments given as a string are passed on as they are; the last block may be unclosed.
  const ParsedToolCalls q = parse_tool_calls("<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}");
  EXPECT_EQ(q.content, "");
  ASSERT_EQ(q.calls.size(), 1u);
  EXPECT_EQ(q.calls[0].arguments, "{\"x\": 1}");
}

TEST(ToolCalls, TextWithoutCallsStaysContent) {
  for (const char* text : {"plain text", "<tool_call>not json</tool_call>", "<tool_call>{\"arguments\": {}}</tool_call>",
                           "a <tool_call>{\"name\": 5}</tool_call>", "<tool_call>{\"name\": \"f\"}</tool_call><tool_call>[1]",
                           "<tool_call>{\"name\": \"f\", \"argu"}) {
    SCOPED_TRACE(text);
    const ParsedToolCalls p = parse_tool_calls(text);
    EXPECT_TRUE(p.calls.empty());
    EXPECT_EQ(p.content, text);
  }
}

TEST(ToolCalls, StreamingHoldsBackWhatMayStartACall) {
  EXPECT_EQ(tool_call_free_prefix("hello"), 5u);
  EXPECT_EQ(tool_call_free_prefix("hello <"), 6u);
  EXPECT_EQ(tool_call_free_prefix("hello <tool_ca"), 6u);
  EXPECT_EQ(tool_call_free_prefix("hello <tool_call>{\"name\""), 6u);
  EXPECT_EQ(tool_call_free_prefix("a <b> c"), 7u);       // not the tag: all of it
  EXPECT_EQ(tool_call_free_prefix("<tool_call"), 0u);
  EXPECT_EQ(tool_call_free_prefix(""), 0u);
}

TEST(ToolCalls, TheResponseShape) {
  std::string out = "{";
  append_tool_calls(out, {{"f", "{\"a\":1}"}, {"g", "{}"}}, /*indexed=*/true);
  out += "}";
  const nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(j["tool_calls"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json& c = j["tool_calls"][i];
    EXPECT_EQ(c["index"], i);
    EXPECT_EQ(c["type"], "function");
    EXPECT_EQ(c["id"].get<std::string>().rfind("chatcmpl-tool-", 0), 0u);
  }
  EXPECT_NE(j["tool_calls"][0]["id"], j["tool_calls"][1]["id"]);
  EXPECT_EQ(j["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(j["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
  std::string plain = "{";
  append_tool_calls(plain, {{"f", "{}"}}, /*indexed=*/false);
  EXPECT_FALSE(nlohmann::json::parse(plain + "}")["tool_calls"][0].contains("index"));
}

}  // namespace
}  // namespace tllm
