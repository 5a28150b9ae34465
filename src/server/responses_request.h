// POST /v1/responses (OpenAI's Responses API) read as a chat completion: `instructions` become
// a system message, the `input` items the conversation (messages with text parts, earlier
// function calls and their outputs), after the stored conversation of previous_response_id;
// `tools` / `tool_choice` / `text.format` the chat request's tools, tool choice and
// response_format, `max_output_tokens` its max_tokens. vLLM's sampling extensions (top_k,
// seed, stop, chat_template_kwargs, ...) pass through. Errors name the Responses field
// ('input[2].content', 'text.format.schema'). Refused: conversation objects, background
// responses that are not stored, prompt templates, hosted tools (web search, file
// search, ...) and non-text input (images, files, audio).
#pragma once

#include <optional>
#include <string>

#include "server/errors.h"
#include "server/protocol.h"

namespace tllm {

struct ResponsesRequest {
  ChatRequest chat;  // the conversation and every generation setting
  // The conversation without the instructions: the stored history, then the input.
  RequestJson conversation = RequestJson::array();
  // The request's `input` as OpenAI's item objects, each with an id and a status (a string
  // input is one user message), as GET /v1/responses/{id}/input_items lists them.
  RequestJson input_items = RequestJson::array();
  bool store = true;
  // Generated after the reply (status "queued"), polled with GET /v1/responses/{id}.
  bool background = false;
  // truncation "auto": a conversation longer than the context loses its oldest messages (after
  // the instructions) until it fits; "disabled" (the default) refuses it.
  bool truncate_auto = false;
  std::optional<std::string> previous_response_id;
  // Echoed in the response object (OpenAI's fields, as the request gave them).
  std::optional<std::string> instructions;
  std::optional<int> max_output_tokens;
  RequestJson tools = RequestJson::array();        // the request's function tools
  RequestJson tool_choice = "auto";
  RequestJson text_format = {{"type", "text"}};    // text.format
  RequestJson reasoning = {{"effort", nullptr}, {"summary", nullptr}};
  RequestJson metadata = RequestJson::object();
  bool parallel_tool_calls = true;
  std::optional<std::string> user;
  // Per-token logprobs in the output text (include "message.output_text.logprobs", or
  // top_logprobs given): chat.logprobs says how many alternatives.
  std::optional<int> top_logprobs;
};

// history: the stored conversation that previous_response_id continues (empty when none).
ResponsesRequest parse_responses_request(const RequestJson& body, const RequestJson& history = RequestJson::array());
// The request's previous_response_id (a 400 when it is not a string).
std::optional<std::string> previous_response_id(const RequestJson& body);

// The chat request's errors under the Responses API's names: param and the quoted field at
// the start of the message ('max_tokens' -> 'max_output_tokens', 'messages' -> 'input',
// 'response_format...' -> 'text.format').
ApiError responses_error(const ApiError& chat_error);

}  // namespace tllm
