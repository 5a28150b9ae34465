// Request parsing and validation: every client mistake is a 400 naming the parameter, and
// valid requests come out with the values OpenAI / vLLM give them.
#include <gtest/gtest.h>

#include "server/errors.h"
#include "server/protocol.h"

namespace tllm {
namespace {

enum class Endpoint { Completions, Chat, Tokenize, Detokenize };

void parse(Endpoint e, const std::string& body) {
  const RequestJson j = parse_json_body(body);
  switch (e) {
    case Endpoint::Completions: parse_completion_request(j); break;
    case Endpoint::Chat: parse_chat_request(j); break;
    case Endpoint::Tokenize: parse_tokenize_request(j); break;
    case Endpoint::Detokenize: parse_detokenize_request(j); break;
  }
}

struct BadCase {
  Endpoint endpoint;
  std::string body;
  std::string param;  // "" = null
};

// Every request here is a client mistake: 400, type invalid_request_error, and the param.
const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> cases = {
      // Body-level.
      {Endpoint::Completions, "{not json", ""},
      {Endpoint::Completions, "", ""},
      {Endpoint::Completions, "[1, 2]", ""},
      {Endpoint::Completions, "\"prompt\"", ""},
      {Endpoint::Completions, "{\"prompt\": \"a\xff\"}", ""},      // invalid UTF-8 in a string
      {Endpoint::Completions, "{\"prompt\": \"a\"}\xc3", ""},      // and outside one
      {Endpoint::Completions, "{\"prompt\": \"\xed\xa0\x80\"}", ""},  // a UTF-16 surrogate
      // 100,000 nested arrays (copying the parsed value overflowed the server's stack)
      {Endpoint::Chat, "{\"chat_template_kwargs\": {\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}}", ""},
      // prompt
      {Endpoint::Completions, "{}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": null}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": 5}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": []}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": [\"a\", 1]}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": [[1, 2], [3, \"x\"]]}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": [[1, 2], 3]}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": [1, 2.5]}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": [1, 99999999999]}", "prompt"},
      {Endpoint::Completions, "{\"prompt\": {\"text\": \"a\"}}", "prompt"},
      // max_tokens
      {Endpoint::Completions, "{\"prompt\": \"a\", \"max_tokens\": 0}", "max_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"max_tokens\": -3}", "max_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"max_tokens\": \"10\"}", "max_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"max_tokens\": 10.5}", "max_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"max_tokens\": true}", "max_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"max_tokens\": 1e12}", "max_tokens"},
      // sampling ranges (vLLM's)
      {Endpoint::Completions, "{\"prompt\": \"a\", \"temperature\": -0.1}", "temperature"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"temperature\": 2.5}", "temperature"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"temperature\": \"hot\"}", "temperature"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"top_p\": 0}", "top_p"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"top_p\": 1.01}", "top_p"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"top_k\": -2}", "top_k"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"top_k\": 1.5}", "top_k"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"min_p\": -0.1}", "min_p"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"min_p\": 1.1}", "min_p"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"presence_penalty\": 2.5}", "presence_penalty"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"frequency_penalty\": -2.01}", "frequency_penalty"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"repetition_penalty\": 0}", "repetition_penalty"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"repetition_penalty\": 2.5}", "repetition_penalty"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"seed\": \"x\"}", "seed"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"n\": 0}", "n"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"n\": 129}", "n"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"n\": \"2\"}", "n"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"n\": 2, \"best_of\": 1}", "best_of"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"best_of\": 129}", "best_of"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"best_of\": 2, \"stream\": true}", "best_of"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"best_of\": 2}", "best_of"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"parallel_tool_calls\": \"x\"}",
       "parallel_tool_calls"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"reasoning_effort\": 5}",
       "reasoning_effort"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"structured_outputs\": {\"regex\": \"a\", \"choice\": [\"a\"]}}",
       "structured_outputs"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"min_tokens\": -1}", "min_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"max_tokens\": 4, \"min_tokens\": 5}", "min_tokens"},
      // logprobs (completions: an integer in [0, 20])
      {Endpoint::Completions, "{\"prompt\": \"a\", \"logprobs\": -1}", "logprobs"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"logprobs\": 21}", "logprobs"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"logprobs\": true}", "logprobs"},
      // stop
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stop\": 5}", "stop"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stop\": [\"\"]}", "stop"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stop\": \"\"}", "stop"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stop\": [\"x\", 1]}", "stop"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stop_token_ids\": [1, \"x\"]}", "stop_token_ids"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stop_token_ids\": 3}", "stop_token_ids"},
      // flags and streaming
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stream\": \"yes\"}", "stream"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stream_options\": {\"include_usage\": true}}", "stream_options"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stream\": true, \"stream_options\": {\"include_usage\": 1}}", "stream_options"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stream\": true, \"stream_options\": {\"foo\": true}}", "stream_options"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"stream\": true, \"stream_options\": 3}", "stream_options"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"echo\": \"true\"}", "echo"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"ignore_eos\": 1}", "ignore_eos"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"skip_special_tokens\": \"no\"}", "skip_special_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"return_tokens_as_token_ids\": 0}", "return_tokens_as_token_ids"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"include_stop_str_in_output\": null, \"model\": 5}", "model"},
      // unknown and unsupported fields
      {Endpoint::Completions, "{\"prompt\": \"a\", \"max_token\": 5}", "max_token"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"messages\": []}", "messages"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"logit_bias\": {\"1\": null}}", "logit_bias"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"logit_bias\": {\"1.5\": 1}}", "logit_bias"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"logit_bias\": {\"99999999999\": 1}}", "logit_bias"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"logit_bias\": \"5\"}", "logit_bias"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"suffix\": \"x\"}", "suffix"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"response_format\": {\"type\": \"json_schema\"}}", "response_format"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"response_format\": \"json_object\"}", "response_format"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"truncate_prompt_tokens\": 0}", "truncate_prompt_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"truncate_prompt_tokens\": -2}", "truncate_prompt_tokens"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"truncate_prompt_tokens\": \"5\"}", "truncate_prompt_tokens"},
      // vLLM's allowed_token_ids (a non-empty id list, not with structured output) and bad_words
      {Endpoint::Completions, "{\"prompt\": \"a\", \"allowed_token_ids\": []}", "allowed_token_ids"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"allowed_token_ids\": [1.5]}", "allowed_token_ids"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"allowed_token_ids\": 5}", "allowed_token_ids"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"allowed_token_ids\": [5], \"guided_regex\": \"a+\"}",
       "allowed_token_ids"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"bad_words\": \"x\"}", "bad_words"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"bad_words\": [1]}", "bad_words"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"bad_words\": [\"\"]}", "bad_words"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"bad_words\": [\"  \"]}", "bad_words"},
      {Endpoint::Completions,
       "{\"prompt\": \"a\", \"stream\": true, \"stream_options\": {\"continuous_usage_stats\": 1}}", "stream_options"},
      // vLLM's prompt_logprobs: 0..20, not streamed
      {Endpoint::Completions, "{\"prompt\": \"a\", \"prompt_logprobs\": 21}", "prompt_logprobs"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"prompt_logprobs\": -1}", "prompt_logprobs"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"prompt_logprobs\": true}", "prompt_logprobs"},
      {Endpoint::Completions, "{\"prompt\": \"a\", \"prompt_logprobs\": 1, \"stream\": true}", "prompt_logprobs"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"prompt_logprobs\": 1, \"stream\": true}",
       "prompt_logprobs"},
      // chat messages
      {Endpoint::Chat, "{}", "messages"},
      {Endpoint::Chat, "{\"messages\": []}", "messages"},
      {Endpoint::Chat, "{\"messages\": \"hi\"}", "messages"},
      {Endpoint::Chat, "{\"messages\": [\"hi\"]}", "messages"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", "messages"},
      {Endpoint::Chat, "{\"messages\": [{\"content\": \"x\"}]}", "messages"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": 1, \"content\": \"x\"}]}", "messages"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\"}]}", "messages"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages"},
      {Endpoint::Chat,
       "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}}]}]}",
       "messages"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]}", "messages"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"assistant\", \"content\": null, \"tool_calls\": 3}]}", "messages"},
      // an earlier call's name and arguments (OpenAI's: strings; an object is taken too)
      {Endpoint::Chat, R"({"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
          "function": {"name": 5, "arguments": "{}"}}]}]})", "messages"},
      {Endpoint::Chat, R"({"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
          "function": {"name": "f"}}]}]})", "messages"},
      // chat logprobs (a bool, plus top_logprobs in [0, 20])
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": 1}", "logprobs"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 3}", "top_logprobs"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true, \"top_logprobs\": 21}",
       "top_logprobs"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true, \"top_logprobs\": -1}",
       "top_logprobs"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_completion_tokens\": 0}",
       "max_completion_tokens"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 0}", "max_tokens"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": -1}", "temperature"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 0}", "n"},
      // tools and template controls
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": \"x\"}", "tools"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"x\"}]}", "tools"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\"}]}",
       "tools"},
      {Endpoint::Chat, R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
          "function": {"name": "f", "parameters": "str"}}]})", "tools"},
      {Endpoint::Chat, R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
          "function": {"name": ""}}]})", "tools"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": \"required\"}",
       "tool_choice"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"chat_template_kwargs\": []}",
       "chat_template_kwargs"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}], \"continue_final_message\": true}",
       "continue_final_message"},
      {Endpoint::Chat,
       "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"continue_final_message\": true, "
       "\"add_generation_prompt\": false}",
       "continue_final_message"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"chat_template\": \"{{ x }}\"}",
       "chat_template"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"echo\": true}", "echo"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"prompt\": \"x\"}", "prompt"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"functions\": [{}]}", "functions"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"modalities\": [\"text\", \"audio\"]}",
       "modalities"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"modalities\": \"text\"}", "modalities"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"verbosity\": \"loud\"}", "verbosity"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"prompt_cache_key\": 1}",
       "prompt_cache_key"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"prompt_cache_retention\": \"1h\"}",
       "prompt_cache_retention"},
      {Endpoint::Chat, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"safety_identifier\": []}",
       "safety_identifier"},
      // /tokenize and /detokenize
      {Endpoint::Tokenize, "{}", "prompt"},
      {Endpoint::Tokenize, "{\"prompt\": 1}", "prompt"},
      {Endpoint::Tokenize, "{\"prompt\": \"x\", \"foo\": 1}", "foo"},
      {Endpoint::Tokenize, "{\"messages\": []}", "messages"},
      {Endpoint::Detokenize, "{}", "tokens"},
      {Endpoint::Detokenize, "{\"tokens\": \"x\"}", "tokens"},
      {Endpoint::Detokenize, "{\"tokens\": [1.5]}", "tokens"},
  };
  return cases;
}

TEST(Protocol, EveryClientMistakeIs400WithTheParam) {
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.body);
    try {
      parse(c.endpoint, c.body);
      ADD_FAILURE() << "accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.type, "invalid_request_error");
      EXPECT_EQ(e.param, c.param) << e.what();
      EXPECT_FALSE(std::string(e.what()).empty());
      // The body is valid JSON even when the message quotes invalid UTF-8.
      const auto body = nlohmann::json::parse(error_body(e));
      EXPECT_EQ(body["error"]["type"], "invalid_request_error");
      if (c.param.empty()) {
        EXPECT_TRUE(body["error"]["param"].is_null());
      } else {
        EXPECT_EQ(body["error"]["param"], c.param);
      }
    }
  }
}

TEST(Protocol, PromptShapes) {
  auto prompts = [](const std::string& body) { return parse_completion_request(parse_json_body(body)).prompts; };
  auto p = prompts(R"({"prompt": "hello"})");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(std::get<std::string>(p[0]), "hello");
  p = prompts(R"({"prompt": ["a", "b"]})");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(std::get<std::string>(p[1]), "b");
  p = prompts(R"({"prompt": [1, 2, 3]})");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(p[0]), (std::vector<int32_t>{1, 2, 3}));
  p = prompts(R"({"prompt": [[1, 2], [3]]})");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(p[1]), (std::vector<int32_t>{3}));
}

TEST(Protocol, CompletionFields) {
  const auto r = parse_completion_request(parse_json_body(R"({
    "model": "m", "prompt": "x", "max_tokens": 7.0, "temperature": 0, "top_p": 0.5, "top_k": -1,
    "min_p": 0.1, "presence_penalty": -2, "frequency_penalty": 2, "repetition_penalty": 1.1,
    "seed": -5, "stop": "END", "stop_token_ids": [5, 6], "n": 3, "stream": true,
    "stream_options": {"include_usage": true}, "logprobs": 2, "echo": true, "ignore_eos": true,
    "min_tokens": 2, "skip_special_tokens": false, "include_stop_str_in_output": true,
    "return_tokens_as_token_ids": true, "user": "u", "logit_bias": {"12": -3.5, "0": 250}, "best_of": 3, "suffix": null})"));
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.temperature, 0.0);
  EXPECT_EQ(r.top_p, 0.5);
  EXPECT_EQ(r.top_k, -1);
  EXPECT_EQ(r.seed, -5);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.stop_token_ids, (std::vector<int32_t>{5, 6}));
  // In the request's order, biases clamped to [-100, 100].
  EXPECT_EQ(r.logit_bias, (std::vector<std::pair<int32_t, float>>{{12, -3.5f}, {0, 100.0f}}));
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(r.stream && r.include_usage && r.echo && r.ignore_eos && r.include_stop_str_in_output &&
              r.return_tokens_as_token_ids);
  EXPECT_FALSE(r.skip_special_tokens);
  EXPECT_EQ(r.logprobs, 2);
  EXPECT_EQ(r.min_tokens, 2);
}

TEST(Protocol, NullMeansUnset) {
  const auto r = parse_completion_request(parse_json_body(
      R"({"prompt": "x", "max_tokens": null, "temperature": null, "stop": null, "seed": null, "n": null,
          "logprobs": null, "stream": null, "stream_options": null})"));
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.temperature);
  EXPECT_FALSE(r.seed);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_EQ(r.n, 1);
  EXPECT_EQ(r.logprobs, -1);
  EXPECT_FALSE(r.stream);
}

TEST(Protocol, ChatMessagesNormalized) {
  const auto r = parse_chat_request(parse_json_body(R"({
    "messages": [
      {"role": "developer", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "f", "arguments": "{\"z\": 1, \"a\": 2}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "42"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2}}}],
    "max_completion_tokens": 9, "max_tokens": 3, "logprobs": true, "top_logprobs": 4,
    "chat_template_kwargs": {"enable_thinking": false}})"));
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "a\nb");
  EXPECT_EQ(r.messages[2]["content"], "");  // null becomes "" (string-content templates, as vLLM)
  // Arguments are handed to the template as an object, keys in the client's order.
  const auto& args = r.messages[2]["tool_calls"][0]["function"]["arguments"];
  ASSERT_TRUE(args.is_object());
  EXPECT_EQ(args.dump(), R"({"z":1,"a":2})");
  EXPECT_EQ(r.tools[0]["function"]["parameters"].dump(), R"({"z":1,"a":2})");
  EXPECT_EQ(r.max_tokens, 9);  // max_completion_tokens wins over the deprecated max_tokens
  EXPECT_EQ(r.logprobs, 4);
  EXPECT_TRUE(r.add_generation_prompt);
  EXPECT_EQ(r.chat_template_kwargs["enable_thinking"], false);
  EXPECT_TRUE(r.parallel_tool_calls);  // OpenAI's default
  const auto one_call = parse_chat_request(
      parse_json_body(R"({"messages": [{"role": "user", "content": "x"}], "parallel_tool_calls": false})"));
  EXPECT_FALSE(one_call.parallel_tool_calls);

  const auto none = parse_chat_request(parse_json_body(
      R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "none",
          "tools": [{"type": "function", "function": {"name": "f"}}], "logprobs": true})"));
  // tool_choice "none": the tools stay in the prompt (OpenAI's, vLLM's default), no call is parsed.
  EXPECT_FALSE(none.tools.is_null());
  EXPECT_FALSE(none.parses_tool_calls());
  EXPECT_TRUE(r.parses_tool_calls());
  EXPECT_EQ(none.logprobs, 0);
  // OpenAI's newer chat fields with nothing to do here are accepted (the client may send them).
  const auto hints = parse_chat_request(parse_json_body(
      R"({"messages": [{"role": "user", "content": "x"}], "modalities": ["text"], "verbosity": "low",
          "prompt_cache_key": "k", "prompt_cache_retention": "24h", "safety_identifier": "s"})"));
  EXPECT_EQ(hints.messages.size(), 1u);
  const auto cont = parse_chat_request(parse_json_body(
      R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "Once"}],
          "continue_final_message": true, "add_generation_prompt": false})"));
  EXPECT_TRUE(cont.continue_final_message);
}

TEST(Protocol, SamplingDefaultsFromGenerationConfig) {
  GenerationConfig gen;
  gen.temperature = 0.8;
  gen.top_p = 0.95;
  gen.top_k = 40;
  gen.repetition_penalty = 1.05;
  const auto omitted = parse_completion_request(parse_json_body(R"({"prompt": "x"})"));
  SamplingParams p = make_sampling_params(omitted, gen, 10, 100, "prompt");
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.repetition_penalty, 1.05f);
  EXPECT_EQ(p.max_tokens, 90);  // no max_tokens: what the context leaves
  EXPECT_EQ(p.logprobs, -1);
  EXPECT_FALSE(p.seed);

  const auto given = parse_completion_request(parse_json_body(
      R"({"prompt": "x", "temperature": 0, "top_p": 1, "top_k": 0, "max_tokens": 500, "seed": 3,
          "stop": ["a"], "logprobs": 3})"));
  p = make_sampling_params(given, gen, 10, 100, "prompt");
  EXPECT_EQ(p.temperature, 0.0f);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.max_tokens, 90);  // clamped to the context, as vLLM does
  EXPECT_EQ(p.seed, 3u);
  EXPECT_EQ(p.stop, std::vector<std::string>{"a"});
  EXPECT_EQ(p.logprobs, 3);

  gen.max_new_tokens = 20;
  p = make_sampling_params(omitted, gen, 10, 100, "prompt");
  EXPECT_EQ(p.max_tokens, 20);
}

TEST(Protocol, ModelDependentChecks) {
  try {
    check_prompt_length(150, 100, "messages");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "messages");
    const std::string m = e.what();
    EXPECT_NE(m.find("150"), std::string::npos) << m;  // both counts in the message
    EXPECT_NE(m.find("100"), std::string::npos) << m;
  }
  EXPECT_THROW(check_prompt_length(100, 100, "prompt"), ApiError);  // no room for one token
  EXPECT_THROW(check_prompt_length(0, 100, "prompt"), ApiError);
  EXPECT_NO_THROW(check_prompt_length(99, 100, "prompt"));
  try {
    check_token_ids({1, 2, 4096}, 4096, "prompt");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "prompt");
    EXPECT_NE(std::string(e.what()).find("4096"), std::string::npos);
  }
  EXPECT_THROW(check_token_ids({-1}, 4096, "tokens"), ApiError);
  EXPECT_NO_THROW(check_token_ids({0, 4095}, 4096, "prompt"));
}

TEST(Protocol, ErrorBodyShape) {
  const auto j = nlohmann::json::parse(error_body(not_found("no such model", "model", "model_not_found")));
  ASSERT_TRUE(j.contains("error"));
  EXPECT_EQ(j["error"]["message"], "no such model");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "model");
  EXPECT_EQ(j["error"]["code"], "model_not_found");
  EXPECT_EQ(unauthorized().status, 401);
  EXPECT_EQ(service_unavailable("x").status, 503);
  const auto e = nlohmann::json::parse(error_body(internal_error("x")));
  EXPECT_TRUE(e["error"]["param"].is_null());
  EXPECT_TRUE(e["error"]["code"].is_null());

  // A message that quotes a huge key (or a 20,000-deep schema path) keeps its start and end.
  std::string key;
  for (int i = 0; i < 100000; ++i) key += (i % 3 == 0) ? "\xc3\xa9" : "k";  // "é" and ASCII, no cut inside a character
  const std::string msg = "Unrecognized request argument supplied: " + key + " (end)";
  const auto big = nlohmann::json::parse(error_body(bad_request(msg, key)));
  const std::string m = big["error"]["message"];
  EXPECT_LE(m.size(), kMaxErrorMessageBytes + 64);
  EXPECT_EQ(m.rfind("Unrecognized request argument supplied: ", 0), 0u);
  EXPECT_EQ(m.substr(m.size() - 6), " (end)");
  EXPECT_NE(m.find(" bytes left out] ... "), std::string::npos);
  EXPECT_EQ(m.find("\xef\xbf\xbd"), std::string::npos) << "a character was cut";  // no U+FFFD
  EXPECT_LE(big["error"]["param"].get<std::string>().size(), kMaxErrorParamBytes + 64);
  EXPECT_EQ(shorten_for_error("short", 10), "short");
}

}  // namespace
}  // namespace tllm
