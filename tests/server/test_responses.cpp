// POST /v1/responses without a server: the request read as the chat request it stands for
// (checked against parse_chat_request of the chat body written by hand), errors under the
// Responses API's field names, and the streamed events against the whole response.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/background_jobs.h"
#include "server/chat_output.h"
#include "server/errors.h"
#include "server/responses_output.h"
#include "server/response_event_log.h"
#include "server/response_store.h"
#include "server/responses_request.h"
#include "sse_events.h"

namespace tllm {
namespace {

using nlohmann::json;
using testing::parse_sse_events;

ResponsesRequest parse(const std::string& body) { return parse_responses_request(parse_json_body(body)); }
ChatRequest chat(const std::string& body) { return parse_chat_request(parse_json_body(body)); }

TEST(ResponsesRequest, InputItemsBecomeTheChatConversation) {
  // A string input is one user message; instructions come first as the system message.
  EXPECT_EQ(parse(R"({"input": "Hi", "instructions": "Be brief."})").chat.messages,
            chat(R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})").messages);

  // Items: text parts joined, developer as system, an assistant turn whose function calls
  // join its text, the calls' outputs as tool messages, a reasoning item on the next
  // assistant turn.
  const ResponsesRequest r = parse(R"({"input": [
      {"role": "developer", "content": "Use tools."},
      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in"},
                                                       {"type": "input_text", "text": "Paris?"}]},
      {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "Look it up."}]},
      {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
      {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
      {"type": "function_call", "call_id": "call_2", "name": "now", "arguments": "{}"},
      {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
      {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "noon"}]},
      {"role": "user", "content": "Thanks."}]})");
  const ChatRequest want = chat(R"({"messages": [
      {"role": "system", "content": "Use tools."},
      {"role": "user", "content": "Weather in\nParis?"},
      {"role": "assistant", "content": "Checking.", "reasoning_content": "Look it up.", "tool_calls": [
          {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
          {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
      {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
      {"role": "user", "content": "Thanks."}]})");
  EXPECT_EQ(r.chat.messages, want.messages) << r.chat.messages.dump(1);

  // A function call without a text before it is an assistant turn of its own.
  EXPECT_EQ(parse(R"({"input": [{"role": "user", "content": "x"},
      {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
      {"type": "function_call_output", "call_id": "c", "output": "1"}]})").chat.messages,
            chat(R"({"messages": [{"role": "user", "content": "x"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "c", "content": "1"}]})").messages);
}

// The input as GET /v1/responses/{id}/input_items lists it: every item as given, with an id
// (kept where given) and a status; string contents as one text part.
TEST(ResponsesRequest, InputItemsAsListed) {
  const RequestJson one = parse(R"({"input": "Hi"})").input_items;
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["id"].get<std::string>().substr(0, 4), "msg_");
  RequestJson want = RequestJson::parse(R"({"id": "", "type": "message", "role": "user", "status": "completed",
      "content": [{"type": "input_text", "text": "Hi"}]})");
  want["id"] = one[0]["id"];
  EXPECT_EQ(one[0].dump(), want.dump());

  const RequestJson items = parse(R"({"input": [
      {"role": "developer", "content": "Use tools."},
      {"type": "message", "id": "msg_given", "role": "user", "content": [{"type": "input_text", "text": "Go"}]},
      {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "Hm."}]},
      {"role": "assistant", "content": "Checking."},
      {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "status": "in_progress"},
      {"type": "function_call_output", "call_id": "call_1", "output": "1"}]})").input_items;
  ASSERT_EQ(items.size(), 6u);
  const char* prefixes[] = {"msg_", "msg_given", "rs_", "msg_", "fc_", "fco_"};
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i]["id"].get<std::string>().rfind(prefixes[i], 0), 0u) << items[i];
    EXPECT_EQ(items[i].contains("status"), i != 2) << items[i];
  }
  for (size_t i = 0; i < items.size(); ++i)
    for (size_t j = i + 1; j < items.size(); ++j) EXPECT_NE(items[i]["id"], items[j]["id"]);
  EXPECT_EQ(items[0]["type"], "message");
  EXPECT_EQ(items[0]["role"], "developer");
  EXPECT_EQ(items[0]["content"], RequestJson::parse(R"([{"type": "input_text", "text": "Use tools."}])"));
  EXPECT_EQ(items[1]["content"], RequestJson::parse(R"([{"type": "input_text", "text": "Go"}])"));
  EXPECT_EQ(items[2]["content"][0]["text"], "Hm.");
  EXPECT_EQ(items[3]["content"], RequestJson::parse(R"([{"type": "output_text", "text": "Checking.", "annotations": []}])"));
  EXPECT_EQ(items[4]["status"], "in_progress");
  EXPECT_EQ(items[4]["name"], "f");
  EXPECT_EQ(items[5]["output"], "1");
  EXPECT_EQ(items[5]["status"], "completed");
}

TEST(ResponsesRequest, AStoredConversationComesBeforeTheInput) {
  // The history (what previous_response_id stored) follows the new instructions and precedes
  // the input; the conversation kept for the next turn has no instructions.
  const RequestJson history = RequestJson::parse(R"([{"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello."}])");
  const ResponsesRequest r = parse_responses_request(
      parse_json_body(R"({"input": "Again?", "instructions": "Be brief.", "previous_response_id": "resp_1"})"), history);
  EXPECT_EQ(r.chat.messages, chat(R"({"messages": [{"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
      {"role": "user", "content": "Again?"}]})").messages);
  EXPECT_EQ(r.conversation, RequestJson::parse(R"([{"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Again?"}])"));
  EXPECT_EQ(r.previous_response_id, "resp_1");
  EXPECT_TRUE(r.store);
  EXPECT_FALSE(parse(R"({"input": "x", "store": false})").store);
}

// A function_call_output answers a function_call made before it, in this input or in the stored
// conversation it continues; one of an unknown call_id is a 400 naming it (OpenAI: "No tool call
// found for function call output with call_id ..."), not a tool result of nothing rendered
// into the prompt.
TEST(ResponsesRequest, AFunctionCallOutputNeedsItsCall) {
  const auto refusal = [](const std::string& body, const RequestJson& history) -> std::string {
    try {
      parse_responses_request(parse_json_body(body), history);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.param, "input");
      return e.what();
    }
    return "accepted";
  };
  const RequestJson none = RequestJson::array();
  const std::string e = refusal(R"({"input": [{"type": "function_call_output", "call_id": "call_9", "output": "x"}]})", none);
  EXPECT_NE(e.find("'input[0].call_id'"), std::string::npos) << e;
  EXPECT_NE(e.find("call_9"), std::string::npos) << e;
  // The output before its call, or of another call, is refused too.
  EXPECT_NE(refusal(R"({"input": [{"role": "user", "content": "x"},
      {"type": "function_call_output", "call_id": "c", "output": "1"},
      {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]})", none), "accepted");
  EXPECT_NE(refusal(R"({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
      {"type": "function_call_output", "call_id": "d", "output": "1"}]})", none), "accepted");
  // The call in the stored conversation (previous_response_id): its output is taken.
  const RequestJson history = RequestJson::parse(R"([{"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_7", "type": "function",
          "function": {"name": "get_weather", "arguments": "{}"}}]}])");
  EXPECT_EQ(refusal(R"({"input": [{"type": "function_call_output", "call_id": "call_7", "output": "Sunny."}]})", history),
            "accepted");
  EXPECT_NE(refusal(R"({"input": [{"type": "function_call_output", "call_id": "call_8", "output": "Sunny."}]})", history),
            "accepted");
}

// A reply's items as the assistant turn are what the same items sent back as input give.
TEST(ResponsesRequest, AReplysItemsAreItsAssistantTurn) {
  const ChatMessageParts parts = split_chat_output(
      "<think>Hm.</think>Let me look. <tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>",
      ReasoningParser::Qwen3, true);
  const std::vector<ResponseItem> items = response_items(parts);
  ASSERT_EQ(items.size(), 3u);
  RequestJson input = RequestJson::array({{{"role", "user"}, {"content", "x"}}});
  for (const ResponseItem& i : items) {
    switch (i.kind) {
      case ResponseItem::Kind::Reasoning:
        input.push_back({{"type", "reasoning"}, {"id", i.id}, {"summary", RequestJson::array()},
                         {"content", {{{"type", "reasoning_text"}, {"text", i.text}}}}});
        break;
      case ResponseItem::Kind::Message:
        input.push_back({{"type", "message"}, {"role", "assistant"},
                         {"content", {{{"type", "output_text"}, {"text", i.text}}}}});
        break;
      case ResponseItem::Kind::FunctionCall:
        input.push_back({{"type", "function_call"}, {"call_id", i.call_id}, {"name", i.name}, {"arguments", i.text}});
        break;
    }
  }
  const ResponsesRequest sent_back = parse_responses_request(RequestJson{{"input", input}});
  RequestJson stored = RequestJson::array({{{"role", "user"}, {"content", "x"}}});
  stored.push_back(assistant_turn(items));
  EXPECT_EQ(sent_back.conversation, stored) << sent_back.conversation.dump(1);
}

TEST(ResponseStore, KeepsTheMostRecentlyUsed) {
  ResponseStore store(2);
  store.put("a", {RequestJson::array(), "A"});
  store.put("b", {RequestJson::array(), "B"});
  ASSERT_TRUE(store.get("a"));  // now the most recent
  store.put("c", {RequestJson::array(), "C"});
  EXPECT_EQ(store.get("a")->response, "A");
  EXPECT_EQ(store.get("b"), nullptr);
  EXPECT_EQ(store.get("c")->response, "C");
  store.put("c", {RequestJson::array(), "C2"});  // replaced, not duplicated
  EXPECT_EQ(store.get("c")->response, "C2");
  EXPECT_EQ(store.get("a")->response, "A");
  ResponseStore none(0);
  none.put("a", {RequestJson::array(), "A"});
  EXPECT_EQ(none.get("a"), nullptr);

  // And at most max_bytes of text: the response plus the conversation's JSON ("[]" here).
  ResponseStore small(10, 100);
  small.put("a", {RequestJson::array(), std::string(40, 'a')});
  small.put("b", {RequestJson::array(), std::string(40, 'b')});
  EXPECT_EQ(small.bytes(), 84u);
  small.put("c", {RequestJson::array(), std::string(40, 'c')});  // 126 > 100: "a" goes
  EXPECT_EQ(small.get("a"), nullptr);
  EXPECT_NE(small.get("b"), nullptr);
  EXPECT_EQ(small.bytes(), 84u);
  small.put("huge", {RequestJson::array(), std::string(200, 'h')});  // larger than all: not kept
  EXPECT_EQ(small.get("huge"), nullptr);
  EXPECT_NE(small.get("c"), nullptr);
  small.put("c", {RequestJson::array(), "C"});  // replaced: its old size leaves
  EXPECT_EQ(small.bytes(), 42u + 3u);
  // Erased (DELETE /v1/responses/{id}): gone, its bytes with it; a second erase finds nothing.
  EXPECT_TRUE(small.erase("b"));
  EXPECT_EQ(small.get("b"), nullptr);
  EXPECT_EQ(small.bytes(), 3u);
  EXPECT_FALSE(small.erase("b"));
  small.put("d", {RequestJson::array(), std::string(90, 'd')});  // the order list lost "b" too: no stale entry evicts
  EXPECT_NE(small.get("d"), nullptr);
  // A later state too large to keep drops the earlier one (a background response whose final
  // form, with its events, outgrew the store must not stay "in_progress").
  auto log = std::make_shared<ResponseEventLog>();
  log.get()->append("event: x\ndata: {}\n\n");
  small.put("d", {RequestJson::array(), std::string(20, 'd'), RequestJson::array(), false, log});
  EXPECT_EQ(small.bytes(), 3u + 22u + log->bytes());  // "c" and "d"
  log->append("event: y\ndata: {\"" + std::string(100, 'y') + "\":1}\n\n");
  small.put("d", {RequestJson::array(), std::string(20, 'd'), RequestJson::array(), true, log});
  EXPECT_EQ(small.get("d"), nullptr);
  EXPECT_EQ(small.bytes(), 3u);

  // A background response still running is not dropped: the least recently used finished one
  // goes instead, and while only running ones are left the store holds more than its capacity.
  ResponseStore bg(2);
  bg.put("run", {RequestJson::array(), "R", RequestJson::array(), false});
  bg.put("a", {RequestJson::array(), "A"});
  bg.put("b", {RequestJson::array(), "B"});  // "run" is the least recent, "a" goes
  EXPECT_NE(bg.get("run"), nullptr);
  EXPECT_EQ(bg.get("a"), nullptr);
  EXPECT_NE(bg.get("b"), nullptr);
  ResponseStore running(1);
  running.put("r1", {RequestJson::array(), "1", RequestJson::array(), false});
  running.put("r2", {RequestJson::array(), "2", RequestJson::array(), false});
  EXPECT_NE(running.get("r1"), nullptr);
  EXPECT_NE(running.get("r2"), nullptr);
  running.put("r1", {RequestJson::array(), "1 done"});  // it ended: kept (the newest), may go next
  EXPECT_EQ(running.get("r1")->response, "1 done");
  running.put("f", {RequestJson::array(), "F"});
  EXPECT_EQ(running.get("r1"), nullptr);
  EXPECT_NE(running.get("r2"), nullptr);
  EXPECT_NE(running.get("f"), nullptr);
}

TEST(ResponsesRequest, SettingsBecomeTheChatRequests) {
  const std::string tools_schema = R"({"type": "object", "properties": {"city": {"type": "string"}}})";
  const ResponsesRequest r = parse(R"({"input": "x", "max_output_tokens": 7, "temperature": 0.5, "top_p": 0.9,
      "tools": [{"type": "function", "name": "get_weather", "description": "d", "parameters": )" + tools_schema +
                                   R"(, "strict": true}],
      "tool_choice": {"type": "function", "name": "get_weather"}, "parallel_tool_calls": false,
      "seed": 3, "top_k": 5, "stop": ["\n"], "metadata": {"k": "v"}, "user": "u", "store": true,
      "include": ["message.output_text.logprobs"], "top_logprobs": 2, "reasoning": {"effort": "low"}})");
  const ChatRequest want = chat(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 7,
      "temperature": 0.5, "top_p": 0.9,
      "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": )" +
                                tools_schema + R"(, "strict": true}}],
      "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
      "seed": 3, "top_k": 5, "stop": ["\n"], "logprobs": true, "top_logprobs": 2})");
  EXPECT_EQ(r.chat.max_tokens, want.max_tokens);
  EXPECT_EQ(r.chat.temperature, want.temperature);
  EXPECT_EQ(r.chat.top_p, want.top_p);
  EXPECT_EQ(r.chat.tools, want.tools);
  EXPECT_TRUE(r.chat.force_tool_call);
  EXPECT_EQ(r.chat.forced_tool, "get_weather");
  EXPECT_EQ(r.chat.seed, want.seed);
  EXPECT_EQ(r.chat.top_k, want.top_k);
  EXPECT_EQ(r.chat.stop, want.stop);
  EXPECT_EQ(r.chat.logprobs, 2);
  EXPECT_EQ(r.max_output_tokens, 7);
  EXPECT_FALSE(r.parallel_tool_calls);
  EXPECT_EQ(r.metadata, RequestJson::parse(R"({"k": "v"})"));
  EXPECT_EQ(r.reasoning["effort"], "low");

  // text.format json_schema is the chat response_format of that schema.
  const ResponsesRequest s = parse(R"({"input": "x", "text": {"format": {"type": "json_schema", "name": "city",
      "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}})");
  EXPECT_EQ(s.chat.output_format_field, "response_format");
  EXPECT_EQ(s.chat.output_format.size(), 1u);
  EXPECT_EQ(parse(R"({"input": "x", "text": {"format": {"type": "json_object"}}})").chat.output_format.size(), 1u);
  EXPECT_TRUE(parse(R"({"input": "x", "text": {"format": {"type": "text"}}})").chat.output_format.empty());
  // tool_choice "none" keeps the tools in the prompt and parses no call; no logprobs unless asked for.
  const ResponsesRequest none = parse(R"({"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": "none"})");
  EXPECT_FALSE(none.chat.tools.is_null());
  EXPECT_FALSE(none.chat.parses_tool_calls());
  EXPECT_EQ(none.chat.logprobs, -1);
}

TEST(ResponsesRequest, MistakesAre400sNamingTheResponsesField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({})", "input"},
      {R"({"input": []})", "input"},
      {R"({"input": 3})", "input"},
      {R"({"input": [1]})", "input"},
      {R"({"input": [{"role": "robot", "content": "x"}]})", "input"},
      {R"({"input": [{"role": "user"}]})", "input"},
      {R"({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]})", "input"},
      {R"({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]})", "input"},
      {R"({"input": [{"type": "function_call_output", "call_id": "c"}]})", "input"},
      {R"({"input": [{"type": "item_reference", "id": "msg_1"}]})", "input"},
      {R"({"input": [{"type": "web_search_call"}]})", "input"},
      {R"({"input": "x", "max_output_tokens": 0})", "max_output_tokens"},
      {R"({"input": "x", "max_output_tokens": "5"})", "max_output_tokens"},
      {R"({"input": "x", "previous_response_id": 1})", "previous_response_id"},
      {R"({"input": "x", "store": "yes"})", "store"},
      {R"({"input": "x", "conversation": "conv_1"})", "conversation"},
      {R"({"input": "x", "background": true, "stream": true, "store": false})", "background"},
      {R"({"input": "x", "background": true, "store": false})", "background"},
      {R"({"input": "x", "background": 1})", "background"},
      {R"({"input": "x", "truncation": "left"})", "truncation"},
      {R"({"input": "x", "tools": [{"type": "web_search"}]})", "tools"},
      {R"({"input": "x", "tools": [{"type": "function"}]})", "tools"},
      {R"({"input": "x", "tools": [{"type": "function", "name": "f", "strict": 1}]})", "tools"},
      {R"({"input": "x", "tool_choice": "required"})", "tool_choice"},
      {R"({"input": "x", "tool_choice": {"type": "web_search"}})", "tool_choice"},
      {R"({"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}})", "tool_choice"},
      {R"({"input": "x", "text": {"format": {"type": "yaml"}}})", "text.format"},
      {R"({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}})", "text.format"},
      {R"({"input": "x", "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "bogus"}}}})", "text.format"},
      {R"({"input": "x", "text": {"verbosity": "loud"}})", "text.verbosity"},
      {R"({"input": "x", "text": {"formats": {}}})", "text"},
      {R"({"input": "x", "include": ["file_search_call.results"]})", "include"},
      {R"({"input": "x", "top_logprobs": 21})", "top_logprobs"},
      {R"({"input": "x", "temperature": 3})", "temperature"},
      {R"({"input": "x", "metadata": {"k": 1}})", "metadata"},
      {R"({"input": "x", "reasoning": {"depth": 1}})", "reasoning"},
      {R"({"input": "x", "stream_options": {"include_usage": true}})", "stream_options"},
      {R"({"input": "x", "messages": []})", "messages"},
      {R"({"input": "x", "max_tokens": 5})", "max_tokens"},
  };
  for (const auto& [body, param] : cases) {
    try {
      parse(body);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_EQ(e.param, param) << body << ": " << e.what();
      // No chat field names, unless the request used them.
      if (std::string(body).find("messages") == std::string::npos) {
        EXPECT_EQ(std::string(e.what()).find("messages"), std::string::npos) << e.what();
      }
      EXPECT_EQ(std::string(e.what()).find("response_format"), std::string::npos) << e.what();
    }
  }
  // The chat parser's messages, renamed.
  try {
    parse(R"({"input": "x", "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "bogus"}}}})");
  } catch (const ApiError& e) {
    EXPECT_NE(std::string(e.what()).find("text.format.schema.type"), std::string::npos) << e.what();
  }
  const ApiError renamed = responses_error(bad_request("'messages[2].content' must be a string", "messages"));
  EXPECT_EQ(std::string(renamed.what()), "'input[2].content' must be a string");
  EXPECT_EQ(renamed.param, "input");
}

// ---- events ---------------------------------------------------------------------------------

TEST(ResponseEvents, StreamedItemsAreTheWholeResponsesItems) {
  const std::string text =
      "<think>Which city?\n</think>It is <b>sunny</b>. <tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
      "{\"city\": \"Paris\", \"days\": [1, 2]}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n"
      "</tool_call>";
  const ResponsesRequest request = parse(R"({"input": "x", "tools": [{"type": "function", "name": "get_weather"},
                                                                     {"type": "function", "name": "now"}]})");
  const ResponseWriter writer(request, "resp_1", "tiny", 1, 1.0f, 1.0f, LogprobStyle{}, false);
  const ChatMessageParts whole = split_chat_output(text, ReasoningParser::Qwen3, true);
  const std::vector<ResponseItem> want = response_items(whole);
  ASSERT_EQ(want.size(), 4u);  // reasoning, message, two calls

  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    ResponseEventStream events(writer);
    ChatOutputStream splitter(ReasoningParser::Qwen3, true);
    std::string out;
    events.start(out);
    for (size_t cut = 0; cut < text.size();) {
      cut = std::min(text.size(), cut + 1 + rng() % 9);
      events.push(splitter.push(std::string_view(text).substr(0, cut), cut == text.size()), {}, out);
    }
    const ResponseUsage usage{10, 0, 40, 5};
    events.finish(false, usage, out);

    const auto ev = parse_sse_events(out);
    ASSERT_GE(ev.size(), 3u);
    std::map<std::string, std::string> deltas;  // item id -> its deltas
    std::vector<std::string> added, done;
    for (size_t i = 0; i < ev.size(); ++i) {
      EXPECT_EQ(ev[i].data["type"], ev[i].type);
      EXPECT_EQ(ev[i].data["sequence_number"], i);
      const std::string& t = ev[i].type;
      if (t.size() > 6 && t.compare(t.size() - 6, 6, ".delta") == 0)
        deltas[ev[i].data["item_id"]] += ev[i].data["delta"].get<std::string>();
      if (t == "response.output_item.added") {
        EXPECT_EQ(ev[i].data["output_index"], added.size());
        EXPECT_EQ(ev[i].data["item"]["status"], "in_progress");
        added.push_back(ev[i].data["item"]["id"]);
      }
      if (t == "response.output_item.done") {
        EXPECT_EQ(done.size() + 1, added.size()) << "an item closed before the next opened";
        done.push_back(ev[i].data["item"]["id"]);
      }
    }
    EXPECT_EQ(ev[0].type, "response.created");
    EXPECT_EQ(ev[1].type, "response.in_progress");
    EXPECT_EQ(ev.back().type, "response.completed");
    EXPECT_EQ(added, done);
    const json& resp = ev.back().data["response"];
    EXPECT_EQ(resp["status"], "completed");
    EXPECT_EQ(resp["usage"]["output_tokens_details"]["reasoning_tokens"], 5);
    EXPECT_EQ(resp["usage"]["total_tokens"], 50);
    const json& output = resp["output"];
    ASSERT_EQ(output.size(), want.size()) << output.dump(1);
    for (size_t i = 0; i < want.size(); ++i) {
      const json& item = output[i];
      EXPECT_EQ(item["id"], added[i]);
      EXPECT_EQ(item["status"], "completed");
      switch (want[i].kind) {
        case ResponseItem::Kind::Reasoning:
          EXPECT_EQ(item["type"], "reasoning");
          EXPECT_EQ(item["content"][0]["text"], want[i].text);
          EXPECT_EQ(deltas[added[i]], want[i].text);
          break;
        case ResponseItem::Kind::Message:
          EXPECT_EQ(item["type"], "message");
          EXPECT_EQ(item["content"][0]["text"], want[i].text);
          EXPECT_EQ(deltas[added[i]], want[i].text);
          break;
        case ResponseItem::Kind::FunctionCall:
          EXPECT_EQ(item["type"], "function_call");
          EXPECT_EQ(item["name"], want[i].name);
          EXPECT_EQ(item["call_id"].get<std::string>().rfind("call_", 0), 0u);
          // The streamed arguments are the model's text; the whole reply's re-serialised.
          EXPECT_EQ(json::parse(item["arguments"].get<std::string>()), json::parse(want[i].text));
          EXPECT_EQ(deltas[added[i]], item["arguments"]);
          break;
      }
    }
  }
}

TEST(ResponseEvents, IncompleteAndFailedAndEmpty) {
  const ResponsesRequest request = parse(R"({"input": "x"})");
  const ResponseWriter writer(request, "resp_1", "tiny", 1, 0.0f, 1.0f, LogprobStyle{}, false);
  // Cut by max_output_tokens: the last item and the response are incomplete.
  {
    ResponseEventStream events(writer);
    std::string out;
    events.start(out);
    ChatOutputStream::Delta d;
    d.content = "Once upon";
    events.push(d, {}, out);
    events.finish(true, ResponseUsage{}, out);
    const auto ev = parse_sse_events(out);
    EXPECT_EQ(ev.back().type, "response.incomplete");
    EXPECT_EQ(ev.back().data["response"]["status"], "incomplete");
    EXPECT_EQ(ev.back().data["response"]["incomplete_details"]["reason"], "max_output_tokens");
    EXPECT_EQ(ev.back().data["response"]["output"][0]["status"], "incomplete");
    EXPECT_EQ(ev.back().data["response"]["output"][0]["content"][0]["text"], "Once upon");
  }
  // No text at all: one empty message, as the whole response has.
  {
    ResponseEventStream events(writer);
    std::string out;
    events.start(out);
    events.finish(false, ResponseUsage{}, out);
    const auto ev = parse_sse_events(out);
    const json& output = ev.back().data["response"]["output"];
    ASSERT_EQ(output.size(), 1u);
    EXPECT_EQ(output[0]["content"][0]["text"], "");
    EXPECT_EQ(response_items(split_chat_output("", ReasoningParser::None, false)).size(), 1u);
  }
  // An engine failure.
  {
    ResponseEventStream events(writer);
    std::string out;
    events.start(out);
    events.fail("boom", out);
    const auto ev = parse_sse_events(out);
    EXPECT_EQ(ev.back().type, "response.failed");
    EXPECT_EQ(ev.back().data["response"]["status"], "failed");
    EXPECT_EQ(ev.back().data["response"]["error"]["message"], "boom");
    EXPECT_EQ(ev.back().data["response"]["error"]["code"], "server_error");
  }
}


// The background jobs of /v1/responses: cancel() sets the flag and returns once the job has
// ended; shutdown() cancels and joins every job; nothing starts after it.
TEST(BackgroundJobs, CancelWaitsForTheJobAndShutdownJoinsAll) {
  BackgroundJobs jobs;
  std::atomic<int> ended{0};
  std::atomic<bool> entered{false};
  auto spin = [&](const std::atomic<bool>& cancelled) {
    entered = true;
    while (!cancelled.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // cancel() must wait for this
    ++ended;
  };
  ASSERT_TRUE(jobs.start("a", spin));
  EXPECT_THROW(jobs.start("a", spin), Error);
  while (!entered.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(jobs.running(), 1u);
  EXPECT_TRUE(jobs.cancel("a"));
  EXPECT_EQ(ended.load(), 1);
  EXPECT_EQ(jobs.running(), 0u);
  EXPECT_FALSE(jobs.cancel("a"));  // ended
  EXPECT_FALSE(jobs.cancel("b"));  // never started
  // A job that ends by itself, then the same id again; a job that throws is logged, not fatal.
  ASSERT_TRUE(jobs.start("quick", [&](const std::atomic<bool>&) { ++ended; }));
  ASSERT_TRUE(jobs.start("throws", [](const std::atomic<bool>&) { throw std::runtime_error("boom"); }));
  while (jobs.running() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(ended.load(), 2);
  ASSERT_TRUE(jobs.start("quick", [&](const std::atomic<bool>&) { ++ended; }));
  ASSERT_TRUE(jobs.start("x", spin));
  ASSERT_TRUE(jobs.start("y", spin));
  jobs.shutdown();
  EXPECT_EQ(ended.load(), 5);
  EXPECT_EQ(jobs.running(), 0u);
  EXPECT_FALSE(jobs.start("z", spin));
}

// The background response's event log: events split at their blank lines, read from an index
// (a reader waits for the next one), and the end after close().
TEST(ResponseEventLog, ReadsFromAnIndexWaitsAndEnds) {
  ResponseEventLog log;
  log.append("event: a\ndata: {\"n\":0}\n\nevent: b\ndata: {\"n\":1}\n\n");
  EXPECT_EQ(log.size(), 2u);
  size_t next = 1;
  std::string out;
  EXPECT_TRUE(log.read(next, out, 0.0));
  EXPECT_EQ(out, "event: b\ndata: {\"n\":1}\n\n");
  EXPECT_EQ(next, 2u);
  out.clear();
  EXPECT_TRUE(log.read(next, out, 0.01));  // nothing yet: still open
  EXPECT_EQ(out, "");
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log.append("event: c\ndata: {}\n\n");
  });
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(log.read(next, out, 30.0));  // wakes at the append, not at the timeout
  writer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(out, "event: c\ndata: {}\n\n");
  EXPECT_EQ(next, 3u);
  EXPECT_EQ(log.bytes(), 2 * std::string("event: a\ndata: {\"n\":0}\n\n").size() + out.size());
  EXPECT_THROW(log.append("event: d\ndata: {}\n"), Error);  // no blank line
  log.close();
  EXPECT_TRUE(log.closed());
  out.clear();
  next = 0;
  EXPECT_FALSE(log.read(next, out, 30.0));  // closed: everything at once, and the end
  EXPECT_EQ(next, 3u);
  EXPECT_EQ(log.size(), 3u);
  EXPECT_THROW(log.append("event: e\ndata: {}\n\n"), Error);
}

}  // namespace
}  // namespace tllm
