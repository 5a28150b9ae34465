// How chat output splits into reasoning_content, content and tool_calls (server/chat_output.h),
// whole and streamed: the streamed deltas, concatenated, are the whole split for every way of
// cutting the text into pushes, and nothing that may still become a tag goes out early.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/output_format.h"
#include "server/chat_output.h"

namespace tllm {
namespace {

struct Streamed {
  std::string reasoning, content;
  std::vector<ToolCall> calls;  // the deltas put together by index
};

// Pushes `t` through `s` in pieces (trial 0: byte by byte; else 1-5 bytes at random) and puts
// the deltas together; `between` checks what went out so far after each push but the last.
Streamed stream(std::string_view t, ChatOutputStream s, int trial, std::mt19937& rng,
                const std::function<void(const Streamed&)>& between = {}) {
  Streamed out;
  size_t at = 0;
  while (true) {
    at = trial == 0 ? at + 1 : std::min(t.size(), at + 1 + rng() % 5);
    const bool finished = at >= t.size();
    const auto d = s.push(t.substr(0, std::min(at, t.size())), finished);
    out.reasoning += d.reasoning;
    out.content += d.content;
    for (const ToolCallDelta& c : d.calls) {
      if (c.name) {
        EXPECT_EQ(c.index, static_cast<int>(out.calls.size()));
        out.calls.push_back({*c.name, ""});
      }
      if (c.index >= static_cast<int>(out.calls.size())) {
        ADD_FAILURE() << "arguments of call " << c.index << " before its name";
        return out;
      }
      out.calls[static_cast<size_t>(c.index)].arguments += c.arguments;
    }
    if (finished) return out;
    if (between) between(out);
  }
}

void expect_same_calls(const std::vector<ToolCall>& streamed, const std::vector<ToolCall>& whole) {
  ASSERT_EQ(streamed.size(), whole.size());
  for (size_t i = 0; i < streamed.size(); ++i) {
    EXPECT_EQ(streamed[i].name, whole[i].name);
    EXPECT_EQ(nlohmann::json::parse(streamed[i].arguments), nlohmann::json::parse(whole[i].arguments))
        << streamed[i].arguments << " against " << whole[i].arguments;
  }
}

// A structured output under a reasoning parser starts after the reasoning, as vLLM's does:
// every whole reply splits into reasoning and content whose text (its newlines after
// </think> aside) is whole for the format; without a parser or a format nothing changes.
TEST(ChatOutput, AFormatStartsAfterTheReasoning) {
  const std::vector<OutputPiece> answer = {OutputPiece::any_of({"Yes.", "No."})};
  const auto whole = [](const std::vector<OutputPiece>& fmt, const std::string& text) {
    FormatPrefix p(&fmt);
    return p.feed(text) && p.complete();
  };
  const std::vector<OutputPiece> q = format_after_reasoning(answer, ReasoningParser::Qwen3);
  for (const std::string reply : {"Yes.", "<think>\nHmm, < or >? </think>\n\nNo.", "<think></think>Yes.", "<think>a</think>\nNo."}) {
    SCOPED_TRACE(reply);
    ASSERT_TRUE(whole(q, reply));
    const ChatMessageParts parts = split_chat_output(reply, ReasoningParser::Qwen3, false);
    std::string content = parts.content;
    content.erase(0, content.find_first_not_of('\n'));
    EXPECT_TRUE(whole(answer, content)) << parts.content;
    EXPECT_EQ(parts.reasoning.has_value(), reply[0] == '<');
  }
  for (const char* bad : {"<think>Yes.", "<think>x</think>Maybe.", "<think>x</think>\n\n\nYes.", "Hmm. Yes.", "Yes.<think>"}) {
    FormatPrefix p(&q);
    EXPECT_FALSE(p.feed(bad) && p.complete()) << bad;
  }
  // DeepSeek-R1: the reply starts in reasoning (its <think> is text), which must end.
  const std::vector<OutputPiece> r1 = format_after_reasoning(answer, ReasoningParser::DeepSeekR1);
  EXPECT_TRUE(whole(r1, "Let me think.</think>\n\nYes."));
  EXPECT_TRUE(whole(r1, "<think>\nLet me think.</think>No."));
  EXPECT_FALSE(whole(r1, "Yes."));
  EXPECT_FALSE(whole(r1, "Let me think."));
  const ChatMessageParts parts = split_chat_output("<think>\nLet me think.</think>No.", ReasoningParser::DeepSeekR1, false);
  EXPECT_EQ(parts.content, "No.");
  // A format that starts with a newline keeps it; one that may be empty may end at </think>.
  const std::vector<OutputPiece> nl = format_after_reasoning({OutputPiece::any_of({"\nyes", "no"})}, ReasoningParser::Qwen3);
  for (const char* ok : {"<think>r</think>\nyes", "<think>r</think>\n\nyes", "<think>r</think>no", "<think>r</think>\nno"})
    EXPECT_TRUE(whole(nl, ok)) << ok;
  EXPECT_FALSE(whole(nl, "<think>r</think>\n\n\n\nyes"));
  const std::vector<OutputPiece> maybe = format_after_reasoning({OutputPiece::any_of({"", "yes"})}, ReasoningParser::Qwen3);
  for (const char* ok : {"<think>x</think>", "<think>x</think>\n", "<think>x</think>\n\n", "<think>x</think>yes", ""})
    EXPECT_TRUE(whole(maybe, ok)) << ok;
  EXPECT_FALSE(whole(maybe, "<think>x"));
  // Nothing to wrap.
  EXPECT_TRUE(format_after_reasoning({}, ReasoningParser::Qwen3).empty());
  const std::vector<OutputPiece> plain = format_after_reasoning(answer, ReasoningParser::None);
  EXPECT_TRUE(whole(plain, "Yes."));
  EXPECT_FALSE(whole(plain, "<think>x</think>Yes."));
}

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
          // Nothing of a tag goes out before it is known not to be one (at the end a block that
          // is not a call goes out as content).
          const auto [reasoning, content, calls] = stream(t, ChatOutputStream(parser, tools), trial, rng, [&](const Streamed& so_far) {
            EXPECT_EQ(so_far.reasoning.find("</think>"), std::string::npos);
            if (tools) {
              EXPECT_EQ(so_far.content.find("<tool_call>"), std::string::npos);
            }
          });
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
          expect_same_calls(calls, whole.calls);
        }
      }
    }
  }
}

// llama3_json: the reply is call objects (after spaces and an optional <|python_tag|>), ";"
// between them, "parameters" or "arguments"; anything else is content. Streamed and whole agree.
TEST(ChatOutput, Llama3JsonCallsWholeAndStreamed) {
  struct Want {
    std::string text;
    std::vector<std::pair<std::string, std::string>> calls;  // name, arguments (compact JSON)
    std::string content;                                      // when no calls
  };
  const std::vector<Want> cases = {
      {R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 3}})",
       {{"get_weather", R"({"city":"Paris","days":3})"}}, ""},
      {"  \n<|python_tag|>{\"name\": \"f\", \"arguments\": {\"s\": \"a}b{\\\"c\"}}", {{"f", R"({"s":"a}b{\"c"})"}}, ""},
      {R"({"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": [1, {"y": null}]}})",
       {{"a", "{}"}, {"b", R"({"x":[1,{"y":null}]})"}}, ""},
      {R"({"name": "a", "parameters": {"k": 1}} and then some words)", {{"a", R"({"k":1})"}}, ""},
      {R"({"name": "n"})", {{"n", "{}"}}, ""},
      {R"({"name": "s", "parameters": "{\"k\": 2}"})", {{"s", R"({"k": 2})"}}, ""},
      {"The weather is fine.", {}, "The weather is fine."},
      {R"(Sure: {"name": "f", "parameters": {}})", {}, R"(Sure: {"name": "f", "parameters": {}})"},
      {R"({"answer": 42})", {}, R"({"answer": 42})"},
      {R"({"name": 7, "parameters": {}})", {}, R"({"name": 7, "parameters": {}})"},
      {"{not json", {}, "{not json"},
      {"<|python", {}, "<|python"},
      {"", {}, ""},
  };
  std::mt19937 rng(5);
  for (const Want& w : cases) {
    SCOPED_TRACE(w.text);
    const ChatMessageParts whole = split_chat_output(w.text, ReasoningParser::None, true, ToolCallParser::Llama3Json);
    ASSERT_EQ(whole.calls.size(), w.calls.size());
    for (size_t i = 0; i < w.calls.size(); ++i) {
      EXPECT_EQ(whole.calls[i].name, w.calls[i].first);
      EXPECT_EQ(nlohmann::json::parse(whole.calls[i].arguments), nlohmann::json::parse(w.calls[i].second));
    }
    EXPECT_EQ(whole.content, w.content);
    // Without tools in the request the text is content, whatever it holds.
    EXPECT_EQ(split_chat_output(w.text, ReasoningParser::None, false, ToolCallParser::Llama3Json).content, w.text);
    for (int trial = 0; trial < 20; ++trial) {
      ChatOutputStream s(ReasoningParser::None, true, ToolCallParser::Llama3Json);
      const Streamed got = stream(w.text, s, trial, rng, [&](const Streamed& so_far) {
        // A reply that turns out to be calls sends no content on the way.
        if (!w.calls.empty()) {
          EXPECT_EQ(so_far.content, "");
        }
      });
      EXPECT_EQ(got.content, w.content) << "trial " << trial;
      expect_same_calls(got.calls, whole.calls);
    }
  }
  // With a reasoning parser, the calls follow the reasoning.
  const std::string r = "<think>use f</think>\n{\"name\": \"f\", \"parameters\": {\"a\": 1}}";
  const ChatMessageParts parts = split_chat_output(r, ReasoningParser::Qwen3, true, ToolCallParser::Llama3Json);
  EXPECT_EQ(*parts.reasoning, "use f");
  ASSERT_EQ(parts.calls.size(), 1u);
  EXPECT_EQ(parts.calls[0].name, "f");
  const Streamed sr = stream(r, ChatOutputStream(ReasoningParser::Qwen3, true, ToolCallParser::Llama3Json), 0, rng);
  EXPECT_EQ(sr.reasoning, "use f");
  expect_same_calls(sr.calls, parts.calls);
}

// A llama3_json call goes out as it is written: its name once the string closes, its
// parameters as they come, before the object ends.
TEST(ChatOutput, Llama3JsonCallsStreamAsTheyAreWritten) {
  const std::string t = R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 3}})";
  ChatOutputStream s(ReasoningParser::None, true, ToolCallParser::Llama3Json);
  std::string args;
  size_t named_at = 0, first_args_at = 0;
  for (size_t n = 1; n <= t.size(); ++n) {
    const auto d = s.push(std::string_view(t).substr(0, n), n == t.size());
    EXPECT_EQ(d.content, "");
    for (const ToolCallDelta& c : d.calls) {
      if (c.name) named_at = n;
      if (!c.arguments.empty() && first_args_at == 0) first_args_at = n;
      args += c.arguments;
    }
  }
  EXPECT_EQ(named_at, t.find("\", \"parameters") + 1);
  EXPECT_EQ(first_args_at, t.find("{\"city") + 1);
  EXPECT_EQ(args, R"({"city": "Paris", "days": 3})");
  EXPECT_TRUE(s.has_calls());
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

// A call whose arguments cannot be JSON: the whole reply is content (vLLM); the stream, whose
// earlier call (or this call's name) already went out, never sends the bad value as arguments
// (it sent "<tool_", "text", "t" + "{}" or "" before): every streamed call's arguments are JSON.
// Where the whole reply has calls, the stream has the same, for every way of cutting the text.
TEST(ChatOutput, StreamedArgumentsAreJsonWhenTheValueIsNot) {
  const std::vector<std::pair<std::string, ToolCallParser>> texts = {
      {"x<tool_call>{\"name\": \"g\"}</tool_call><tool_call>\n{\"name\": \"f\", \"arguments\": text }\n</tool_call>",
       ToolCallParser::Hermes},
      {"<tool_call>\n{\"name\": \"f\", \"arguments\": <tool_}\n</tool_call>", ToolCallParser::Hermes},
      {"<tool_call>\n{\"name\": \"f\", \"arguments\": \n}\n</tool_call>", ToolCallParser::Hermes},
      {"{\"name\": \"f\"}; {\"name\": \"g\", \"arguments\": hi }", ToolCallParser::Llama3Json},
      {"{\"name\": \"f\", \"parameters\": , }hi ", ToolCallParser::Llama3Json},
      {"{\"name\": \"f\", \"parameters\": <|python_tag|>}", ToolCallParser::Llama3Json},
      // Numbers and literals whole: the same calls as the whole parse.
      {"<tool_call>{\"name\": \"n\", \"arguments\": -1.5e-3}</tool_call><tool_call>{\"name\": \"t\", \"arguments\": true}"
       "</tool_call>",
       ToolCallParser::Hermes},
      {"{\"name\": \"n\", \"parameters\": 12}; {\"name\": \"t\", \"parameters\": false}", ToolCallParser::Llama3Json},
  };
  std::mt19937 rng(5);
  for (const auto& [t, format] : texts) {
    const ChatMessageParts whole = split_chat_output(t, ReasoningParser::None, true, format);
    for (int trial = 0; trial < 20; ++trial) {
      SCOPED_TRACE(t + " trial " + std::to_string(trial));
      const Streamed s = stream(t, ChatOutputStream(ReasoningParser::None, true, format), trial, rng);
      for (const ToolCall& c : s.calls)
        EXPECT_FALSE(nlohmann::json::parse(c.arguments, nullptr, false).is_discarded()) << c.name << ": " << c.arguments;
      if (!whole.calls.empty()) {
        EXPECT_EQ(s.content, whole.content);
        expect_same_calls(s.calls, whole.calls);
      } else {
        EXPECT_EQ(whole.content, t);
      }
    }
  }
}

// A reply cut inside the closing tag (max_tokens, a stop string): the whole reply has the call,
// as the stream had it (it was content, "<tool_call>...</tool_" as text, while the stream sent
// the call).
TEST(ChatOutput, AReplyCutInTheClosingTagHasItsCall) {
  const std::string call = "Sure.<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n";
  std::mt19937 rng(9);
  for (const char* cut : {"<", "</", "</tool_", "</tool_call"}) {
    const std::string t = call + cut;
    SCOPED_TRACE(t);
    const ChatMessageParts whole = split_chat_output(t, ReasoningParser::None, true);
    EXPECT_EQ(whole.content, "Sure.");
    ASSERT_EQ(whole.calls.size(), 1u);
    EXPECT_EQ(whole.calls[0].name, "f");
    EXPECT_EQ(whole.calls[0].arguments, R"({"a":1})");
    for (int trial = 0; trial < 10; ++trial) {
      const Streamed s = stream(t, ChatOutputStream(ReasoningParser::None, true), trial, rng);
      EXPECT_EQ(s.content, whole.content);
      expect_same_calls(s.calls, whole.calls);
    }
  }
  // Not a prefix of the tag: still not a call, as before.
  EXPECT_TRUE(split_chat_output(call + "</tool_x", ReasoningParser::None, true).calls.empty());
}

// parallel_tool_calls false (Responses API): one call at most, streamed or whole, in either
// format; the first call is the whole reply's first.
TEST(ChatOutput, LimitedCallsKeepTheFirst) {
  const std::vector<std::pair<std::string, ToolCallParser>> texts = {
      {"a<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}}</tool_call>\n<tool_call>{\"name\": \"g\", "
       "\"arguments\": {}}</tool_call><tool_call>{\"name\": \"h\"}",
       ToolCallParser::Hermes},
      {"{\"name\": \"f\", \"parameters\": {\"x\": 1}}; {\"name\": \"g\", \"parameters\": {}}", ToolCallParser::Llama3Json},
  };
  std::mt19937 rng(7);
  for (const auto& [t, format] : texts) {
    ChatMessageParts whole = split_chat_output(t, ReasoningParser::None, true, format);
    ASSERT_GE(whole.calls.size(), 2u);
    keep_first_calls(whole, 1);
    ASSERT_EQ(whole.calls.size(), 1u);
    EXPECT_EQ(whole.calls[0].name, "f");
    for (int trial = 0; trial < 10; ++trial) {
      SCOPED_TRACE(t + " trial " + std::to_string(trial));
      ChatOutputStream s(ReasoningParser::None, true, format);
      s.limit_calls(1);
      const Streamed out = stream(t, s, trial, rng);
      EXPECT_EQ(out.content, whole.content);
      expect_same_calls(out.calls, whole.calls);
    }
  }
}

TEST(ChatOutput, ParserNames) {
  EXPECT_EQ(reasoning_parser_from_name(""), ReasoningParser::None);
  EXPECT_EQ(reasoning_parser_from_name("qwen3"), ReasoningParser::Qwen3);
  EXPECT_EQ(reasoning_parser_from_name("deepseek_r1"), ReasoningParser::DeepSeekR1);
  EXPECT_THROW(reasoning_parser_from_name("granite"), InvalidArgument);
  EXPECT_EQ(tool_call_parser_from_name("hermes"), ToolCallParser::Hermes);
  EXPECT_EQ(tool_call_parser_from_name("llama3_json"), ToolCallParser::Llama3Json);
  EXPECT_THROW(tool_call_parser_from_name("pythonic"), InvalidArgument);
}

}  // namespace
}  // namespace tllm
