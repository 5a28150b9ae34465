// Tool calls in a chat completion's output, in one of two formats (vLLM's --tool-call-parser):
// - "hermes", what Qwen2.5 / Qwen3 chat templates teach the model:
//     text <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call> <tool_call>...</tool_call>
//   The content is the text before the first <tool_call>; each block is one call; the last
//   block may lack its closing tag, or end in part of it (the output ended).
// - "llama3_json", what Llama 3.1 / 3.2 templates teach: the reply is the call itself,
//     [<|python_tag|>]{"name": "f", "parameters": {...}}; {"name": "g", "parameters": {...}}
//   ("arguments" is taken for "parameters" too). A reply that does not start with a call
//   object (after spaces and the optional tag) is content; text after the last call is
//   dropped, as vLLM's parser drops it. vLLM's non-streaming parser also finds a call after
//   other text; here the reply must start with it, so that streamed and whole replies agree.
// When any block (object) is not a JSON object with a string "name", nothing is a call and
// the whole text stays content, as vLLM does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampling_params.h"

namespace tllm {

inline constexpr std::string_view kToolCallOpen = "<tool_call>";
inline constexpr std::string_view kToolCallClose = "</tool_call>";
inline constexpr std::string_view kPythonTag = "<|python_tag|>";  // llama3_json's optional prefix

enum class ToolCallParser { Hermes, Llama3Json };
// "hermes", "llama3_json"; throws InvalidArgument naming the supported ones.
ToolCallParser tool_call_parser_from_name(const std::string& name);

struct ToolCall {
  std::string name;
  std::string arguments;  // the arguments as a JSON text ("{}" when the block has none)
};

struct ParsedToolCalls {
  std::string content;  // the text before the first call (the whole text without calls)
  std::vector<ToolCall> calls;
};

ParsedToolCalls parse_tool_calls(std::string_view text);                         // hermes
ParsedToolCalls parse_llama3_json_calls(std::string_view text);                  // llama3_json
ParsedToolCalls parse_tool_calls(std::string_view text, ToolCallParser format);  // either

// Streaming (OpenAI's delta.tool_calls): a call goes out as its first delta, with the name
// (the id and type go with it) once the "name" string is complete, then fragments of its
// arguments' JSON text as the model writes them (concatenated, the arguments value as written;
// a number or literal goes out once whole; a string-valued "arguments" goes out decoded once
// complete; none or null: "{}"). A value that cannot be JSON (a word, a tag, nothing) is never
// sent as arguments: the scan calls the body bad.
struct ToolCallDelta {
  int index = 0;
  std::optional<std::string> name;  // set on the call's first delta
  std::string arguments;            // the next fragment of the arguments text
};

// What has arrived of a <tool_call> block's body (the text after the tag), or of a llama3_json
// call object: the object's name once its string is complete, the span of its "arguments"
// (or, with `parameters_key`, "parameters") value so far, and where the object ends.
struct CallBodyScan {
  enum class Args { None, Null, String, Raw };  // Raw: an object, array, number or literal
  bool bad = false;                             // not the start of a JSON object with string keys
  std::optional<std::string> name;
  Args args = Args::None;
  size_t args_begin = 0, args_end = 0;  // the value's text in the body
  bool args_complete = false;           // args_end is its end (else: what has arrived of it)
  std::string args_string;              // Args::String, complete: the decoded string
  size_t end = std::string_view::npos;  // one past the object's closing brace, once it arrived
};
CallBodyScan scan_call_body(std::string_view body, bool parameters_key = false);
// The first index from i on that is not JSON whitespace (text.size() when there is none).
size_t skip_json_space(std::string_view text, size_t i);

// Streaming: how many leading bytes of text can go out now: everything before `tag`, and before
// a suffix that could still become it.
size_t text_before_tag(std::string_view text, std::string_view tag);
// text_before_tag(text, "<tool_call>").
size_t tool_call_free_prefix(std::string_view text);

// The structured output of a forced call (tool_choice "required", name empty: the name is one
// of the tools'; a named function: that name), the model writing the call object, its name
// first, its arguments under the tool's parameters schema (engine/json_schema.h; its $refs
// resolve within the parameters, as under guided_json; one it cannot enforce is refused,
// InvalidArgument naming tools[i].function.parameters):
//   <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
// llama3_json: the call object alone, {"name": ..., "parameters": ...}.
std::vector<OutputPiece> forced_tool_call_format(const nlohmann::ordered_json& tools, const std::string& name,
                                                 ToolCallParser format = ToolCallParser::Hermes);

// Whether a tool sets "strict": true (OpenAI: its calls follow its parameters schema).
bool has_strict_tool(const nlohmann::ordered_json& tools);
// tool_choice "auto" with strict tools: free text, and once the model writes "<tool_call>" the
// call as above (strict tools' arguments under their schemas, refused as above when they cannot
// be enforced; the others' any object), then free text again (more calls may follow).
std::vector<OutputPiece> strict_tool_call_format(const nlohmann::ordered_json& tools);
// tool_choice "auto" with a structured output (response_format, guided_*): the reply follows
// `format`, or it is tool calls (OpenAI: the model may call a tool or answer in the format):
// hermes blocks as above, one or more, a newline between them; llama3_json call objects, "; "
// between them. Strict tools' arguments follow their schemas, the others' any object. (With
// llama3_json an answer object shaped like a call, {"name": <a tool>, "parameters": {...}},
// reads as a call: that parser cannot tell them apart.)
std::vector<OutputPiece> format_or_tool_calls(std::vector<OutputPiece> format, const nlohmann::ordered_json& tools,
                                              ToolCallParser parser);

// Appends `"tool_calls":[...]` (ids "chatcmpl-tool-<hex>", type "function") of a whole reply.
void append_tool_calls(std::string& out, const std::vector<ToolCall>& calls);
// The same of a streamed chunk: each delta with its index; a call's first delta with its id,
// type and name.
void append_tool_call_deltas(std::string& out, const std::vector<ToolCallDelta>& deltas);

}  // namespace tllm
