// Hermes-format tool calls in chat output (server/tool_calls.h), against vLLM's hermes parser
// behaviour: content before the first <tool_call>, one call per block, an unclosed last block,
// arguments as a JSON text, no calls at all when a block is not a call; the streaming hold-back.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/json_schema.h"
#include "engine/output_format.h"
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
  append_tool_calls(out, {{"f", "{\"a\":1}"}, {"g", "{}"}});
  out += "}";
  const nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(j["tool_calls"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json& c = j["tool_calls"][i];
    EXPECT_FALSE(c.contains("index"));
    EXPECT_EQ(c["type"], "function");
    EXPECT_EQ(c["id"].get<std::string>().rfind("chatcmpl-tool-", 0), 0u);
  }
  EXPECT_NE(j["tool_calls"][0]["id"], j["tool_calls"][1]["id"]);
  EXPECT_EQ(j["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(j["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
  // Streamed (OpenAI's chunk shape): every delta has its index; a call's first one its id,
  // type and name; later ones only an arguments fragment.
  std::string deltas = "{";
  append_tool_call_deltas(deltas, {{0, "f", ""}, {0, std::nullopt, "{\"a\""}, {1, "g", "{}"}});
  const nlohmann::json d = nlohmann::json::parse(deltas + "}")["tool_calls"];
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0]["index"], 0);
  EXPECT_EQ(d[0]["type"], "function");
  EXPECT_EQ(d[0]["function"]["name"], "f");
  EXPECT_EQ(d[0]["function"]["arguments"], "");
  EXPECT_EQ(d[1]["index"], 0);
  EXPECT_FALSE(d[1].contains("id"));
  EXPECT_FALSE(d[1]["function"].contains("name"));
  EXPECT_EQ(d[1]["function"]["arguments"], "{\"a\"");
  EXPECT_EQ(d[2]["index"], 1);
  EXPECT_EQ(d[2]["function"]["name"], "g");
  EXPECT_EQ(d[2]["function"]["arguments"], "{}");
}

// The scan of a block's body as it arrives: the name once its string is complete, the
// arguments' span so far, and a body that cannot start a JSON object is bad at once.
TEST(ToolCalls, TheScanOfAPartialBody) {
  const std::string body = "\n{\"name\": \"get_\\u0077eather\", \"arguments\": {\"city\": \"Pa{r}is \\\"x\\\"\", \"n\": [1, 2]}}\n";
  const size_t args_at = body.find("{\"city");
  const size_t args_end = body.rfind('}');  // the object's own brace; the arguments end before it
  for (size_t n = 0; n <= body.size(); ++n) {
    SCOPED_TRACE("first " + std::to_string(n) + " bytes");
    const CallBodyScan s = scan_call_body(std::string_view(body).substr(0, n));
    EXPECT_FALSE(s.bad);
    const size_t name_end = body.find("\", \"arguments") + 1;
    EXPECT_EQ(s.name.has_value(), n >= name_end);
    if (s.name) {
      EXPECT_EQ(*s.name, "get_weather");
    }
    if (n > args_at) {
      ASSERT_EQ(s.args, CallBodyScan::Args::Raw);
      EXPECT_EQ(s.args_begin, args_at);
      EXPECT_EQ(s.args_complete, n >= args_end);
      EXPECT_EQ(s.args_end, std::min(n, args_end));
    } else {
      EXPECT_EQ(s.args, CallBodyScan::Args::None);
    }
  }
  EXPECT_TRUE(scan_call_body("not a call").bad);
  EXPECT_TRUE(scan_call_body("{name: 1}").bad);
  EXPECT_TRUE(scan_call_body("{\"name\" 1").bad);
  const CallBodyScan str = scan_call_body("{\"arguments\": \"{\\\"a\\\": 1}\", \"name\": \"f\"}");
  EXPECT_EQ(str.args, CallBodyScan::Args::String);
  EXPECT_TRUE(str.args_complete);
  EXPECT_EQ(str.args_string, "{\"a\": 1}");
  EXPECT_EQ(*str.name, "f");
  EXPECT_EQ(scan_call_body("{\"name\": \"f\", \"arguments\": nu").args, CallBodyScan::Args::Null);
}

// A value that cannot be JSON (a tag, a word, nothing before the next ',' or '}') makes the body
// bad, so that a stream never sends it as a call's arguments: it went out as "<tool_", "text"
// or "" (invalid JSON arguments) where the whole reply was content. A number or literal still
// arriving is fine.
TEST(ToolCalls, TheScanRefusesValuesThatCannotBeJson) {
  for (const char* body : {"{\"name\": \"f\", \"arguments\": <tool_}", "{\"name\": \"f\", \"arguments\": text }",
                           "{\"name\": \"f\", \"arguments\": \n}", "{\"name\": \"f\", \"arguments\": , }",
                           "{\"name\": \"f\", \"arguments\": ;}", "{\"name\": \"f\", \"arguments\": tru }",
                           "{\"name\": \"f\", \"arguments\": 1x2}", "{\"name\": \"f\", \"arguments\": nulll}",
                           "{\"name\": \"f\", \"arguments\": -}", "{\"name\": \"f\", \"parameters\": te"}) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(scan_call_body(body, true).bad);
  }
  for (const char* body : {"{\"name\": \"f\", \"arguments\": tr", "{\"name\": \"f\", \"arguments\": -1.5e",
                           "{\"name\": \"f\", \"arguments\": 12}", "{\"name\": \"f\", \"arguments\": null}",
                           "{\"name\": \"f\", \"arguments\": false, \"x\": -0.5}", "{\"name\": \"f\", \"arguments\": "}) {
    SCOPED_TRACE(body);
    EXPECT_FALSE(scan_call_body(body).bad);
  }
  EXPECT_EQ(scan_call_body("{\"name\": \"f\", \"arguments\": 12}").args, CallBodyScan::Args::Raw);
}

// Whether the whole of `text` is an output the format allows.
bool format_takes(const std::vector<OutputPiece>& fmt, const std::string& text) {
  FormatPrefix p(&fmt);
  return p.feed(text) && p.complete();
}

std::string call_text(const std::string& name, const std::string& args) {
  return "<tool_call>\n{\"name\": \"" + name + "\", \"arguments\": " + args + "}\n</tool_call>";
}

// Parameters with $defs / definitions / "#" refs, as pydantic writes them, constrain the
// arguments as guided_json does with the same schema: they were embedded in the call object,
// where "#/$defs/Item" named nothing (a 400 about schema.properties.arguments...) and "#"
// named the call object (arguments {"next": {"name": "f", "arguments": ...}}).
TEST(ToolCalls, ParameterRefsResolveWithinTheParameters) {
  const auto tools = nlohmann::ordered_json::parse(R"([
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
      "properties": {"item": {"$ref": "#/$defs/Item"}}, "required": ["item"],
      "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
                         "additionalProperties": false}}}}},
    {"type": "function", "function": {"name": "g", "parameters": {"type": "object",
      "properties": {"v": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
      "required": ["v", "next"], "additionalProperties": false}}},
    {"type": "function", "function": {"name": "h", "strict": true, "parameters": {"type": "object",
      "properties": {"p": {"$ref": "#/definitions/P"}}, "required": ["p"], "additionalProperties": false,
      "definitions": {"P": {"type": "string", "maxLength": 3}}}}},
    {"type": "function", "function": {"name": "k", "parameters": {"type": "object",
      "properties": {"enum": {"$ref": "#/$defs/E"}}, "required": ["enum"], "additionalProperties": false,
      "$defs": {"E": {"type": "integer", "maximum": 9}}}}}])");
  for (const std::string& forced :
       {std::string(), std::string("f"), std::string("g"), std::string("h"), std::string("k")}) {
    SCOPED_TRACE(forced);
    const std::vector<OutputPiece> fmt = forced_tool_call_format(tools, forced);
    if (forced.empty() || forced == "f") {
      EXPECT_TRUE(format_takes(fmt, call_text("f", R"({"item": {"n": 5}})")));
      EXPECT_FALSE(format_takes(fmt, call_text("f", R"({"item": {"n": "x"}})")));
      EXPECT_FALSE(format_takes(fmt, call_text("f", R"({"item": {"m": 1}})")));
    }
    if (forced.empty() || forced == "g") {
      EXPECT_TRUE(format_takes(fmt, call_text("g", R"({"v": 1, "next": {"v": 2, "next": null}})")));
      EXPECT_FALSE(
          format_takes(fmt, call_text("g", R"({"v": 1, "next": {"name": "g", "arguments": {"v": 2, "next": null}}})")));
    }
    if (forced.empty() || forced == "h") {
      EXPECT_TRUE(format_takes(fmt, call_text("h", R"({"p": "abc"})")));
      EXPECT_FALSE(format_takes(fmt, call_text("h", R"({"p": "abcd"})")));
    }
    if (forced.empty() || forced == "k") {  // a property named like a keyword is still a schema
      EXPECT_TRUE(format_takes(fmt, call_text("k", R"({"enum": 7})")));
      EXPECT_FALSE(format_takes(fmt, call_text("k", R"({"enum": 12})")));
    }
  }
  // A strict tool under tool_choice "auto": the same schemas after the free text.
  const std::vector<OutputPiece> strict = strict_tool_call_format(tools);
  EXPECT_TRUE(format_takes(strict, "Let me see. " + call_text("h", R"({"p": "ab"})")));
  EXPECT_FALSE(format_takes(strict, "Let me see. " + call_text("h", R"({"p": "abcd"})")));
  EXPECT_TRUE(format_takes(strict, "Let me see. " + call_text("g", R"({"anything": [1]})")));  // g is not strict
}

// tool_choice "auto" with a response_format: the reply is the format's JSON, or calls (one or
// more; strict tools' arguments under their schemas, the others' any object), never text; and
// what the parser reads from a whole reply is that answer as content, or those calls.
TEST(ToolCalls, AnAnswerInTheFormatOrCalls) {
  const auto tools = nlohmann::ordered_json::parse(R"([
    {"type": "function", "function": {"name": "h", "strict": true, "parameters": {"type": "object",
      "properties": {"p": {"type": "string", "maxLength": 3}}, "required": ["p"], "additionalProperties": false}}},
    {"type": "function", "function": {"name": "g", "parameters": {"type": "object",
      "properties": {"v": {"type": "integer"}}}}}])");
  const auto answer = JsonSchema::compile(nlohmann::json::parse(
      R"({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false})"));
  const std::vector<OutputPiece> fmt = format_or_tool_calls({OutputPiece::value(answer)}, tools, ToolCallParser::Hermes);
  EXPECT_TRUE(format_takes(fmt, R"({"city": "Paris"})"));
  EXPECT_TRUE(format_takes(fmt, call_text("h", R"({"p": "ab"})")));
  EXPECT_TRUE(format_takes(fmt, call_text("h", R"({"p": "ab"})") + "\n" + call_text("g", R"({"w": [1]})") + "\n"));
  EXPECT_TRUE(format_takes(fmt, call_text("g", R"({"v": "not enforced"})")));
  for (const std::string& bad : {std::string("Sure! ") + R"({"city": "Paris"})", std::string(R"({"town": "Paris"})"),
                                call_text("h", R"({"p": "abcd"})"), call_text("f", "{}"),
                                R"({"city": "Paris"})" + call_text("g", "{}"), call_text("g", "{}") + R"({"city": "x"})",
                                call_text("g", "{}") + " and text"}) {
    FormatPrefix p(&fmt);
    EXPECT_FALSE(p.feed(bad) && p.complete()) << bad;
  }
  for (const std::string& reply : {std::string(R"({"city": "Paris"})"), call_text("h", R"({"p": "ab"})") + "\n" + call_text("g", "{}")}) {
    ASSERT_TRUE(format_takes(fmt, reply));
    const ParsedToolCalls parsed = parse_tool_calls(reply);
    if (reply[0] == '{') {
      EXPECT_EQ(parsed.content, reply);
      EXPECT_TRUE(parsed.calls.empty());
    } else {
      EXPECT_EQ(parsed.content, "");
      ASSERT_EQ(parsed.calls.size(), 2u);
      EXPECT_EQ(parsed.calls[0].name, "h");
      EXPECT_EQ(parsed.calls[1].name, "g");
    }
  }
  // llama3_json: the reply is the answer or call objects, "; " between them.
  const std::vector<OutputPiece> l3 = format_or_tool_calls({OutputPiece::value(answer)}, tools, ToolCallParser::Llama3Json);
  EXPECT_TRUE(format_takes(l3, R"({"city": "Paris"})"));
  const std::string two = R"({"name": "h", "parameters": {"p": "ab"}}; {"name": "g", "parameters": {}})";
  EXPECT_TRUE(format_takes(l3, two));
  EXPECT_FALSE(format_takes(l3, R"({"name": "h", "parameters": {"p": "abcd"}})"));
  // Calls back to back, or a "; " after the last, are not what the parser reads as calls.
  FormatPrefix back_to_back(&l3);
  EXPECT_FALSE(back_to_back.feed(R"({"name": "g", "parameters": {}}{"name": "g", "parameters": {}})"));
  EXPECT_FALSE(format_takes(l3, R"({"name": "g", "parameters": {}}; )"));
  const ParsedToolCalls parsed = parse_llama3_json_calls(two);
  ASSERT_EQ(parsed.calls.size(), 2u);
  EXPECT_EQ(parsed.calls[1].name, "g");
}

// Parameters structured output cannot enforce, on a tool whose calls must follow them (a
// forced call, a strict tool): a 400 naming the tool's parameters, not arguments relaxed to any
// object with only a line in the server's log.
TEST(ToolCalls, UnenforceableParametersOfAForcedCallAreRefused) {
  const auto tools_with = [](const std::string& params, bool is_strict) {
    return nlohmann::ordered_json::parse(
        R"([{"type": "function", "function": {"name": "ok", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "bad", "strict": )" +
        std::string(is_strict ? "true" : "false") + R"(, "parameters": )" + params + "}}]");
  };
  const auto refusal = [](const std::function<void()>& build) {
    try {
      build();
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(e.param(), "tools");
      return std::string(e.what());
    }
    return std::string("built");
  };
  for (const char* params : {R"({"not": {}})", "false", R"({"type": "foo"})", "5", R"({"$ref": "#"})",
                             R"({"type": "integer", "minimum": 1e300})"}) {
    SCOPED_TRACE(params);
    const auto tools = tools_with(params, false);
    for (const char* forced : {"", "bad"}) {
      const std::string e = refusal([&] { forced_tool_call_format(tools, forced); });
      EXPECT_NE(e.find("'tools[1].function.parameters' cannot be enforced"), std::string::npos) << e;
    }
    EXPECT_EQ(refusal([&] { forced_tool_call_format(tools, "ok"); }), "built");  // not the tool called
    EXPECT_EQ(refusal([&] { strict_tool_call_format(tools); }), "built");        // neither forced nor strict
    const std::string e = refusal([&] { strict_tool_call_format(tools_with(params, true)); });
    EXPECT_NE(e.find("'tools[1].function.parameters' cannot be enforced"), std::string::npos) << e;
  }
  // No parameters, or {}: a call without constraints on its arguments object.
  const auto none = nlohmann::ordered_json::parse(R"([
      {"type": "function", "function": {"name": "a"}},
      {"type": "function", "function": {"name": "b", "parameters": {}}}])");
  const std::vector<OutputPiece> fmt = forced_tool_call_format(none, "");
  EXPECT_TRUE(format_takes(fmt, call_text("a", R"({"x": 1})")));
  EXPECT_TRUE(format_takes(fmt, call_text("b", "{}")));
}

}  // namespace
}  // namespace tllm
