#include "server/responses_request.h"

#include <algorithm>
#include <set>
#include <utility>

#include "server/errors.h"
#include "server/request_fields.h"
#include "server/responses_output.h"

namespace tllm {
namespace {

using json = RequestJson;
using namespace request_fields;

// Text of a content list: input_text / output_text parts (a refusal part's refusal), joined
// by newlines as chat content parts are.
std::string content_text(const json& content, const std::string& path) {
  return content_parts_text(content, path, "input", {{"input_text", "text"}, {"output_text", "text"}, {"refusal", "refusal"}},
                            " (this server takes text: input_text, output_text)");
}

std::string required_string(const json& item, const char* key, const std::string& path,
                            const std::string& param = "input") {
  const json* v = find(item, key);
  if (!v || !v->is_string()) throw bad_request("'" + path + "." + key + "' must be a string", param);
  return v->get<std::string>();
}

// The text of a reasoning item (its reasoning_text content, else its summary), which the
// next assistant message carries as reasoning_content (Qwen3's template prints it).
std::string reasoning_text(const json& item, const std::string& path) {
  std::string text;
  for (const char* key : {"content", "summary"}) {
    const json* parts = find(item, key);
    if (!parts) continue;
    if (!parts->is_array()) throw bad_request("'" + path + "." + key + "' must be a list", "input");
    for (const json& p : *parts) {
      const json* t = p.is_object() ? find(p, "text") : nullptr;
      if (!t || !t->is_string()) throw bad_request("'" + path + "." + key + "' entries must have a 'text' string", "input");
      if (!text.empty()) text += '\n';
      text += t->get<std::string>();
    }
    if (!text.empty()) break;
  }
  return text;
}

// `input` (a string, or a list of items) after the earlier turns, as chat messages.
json conversation(const json& body, const json& history) {
  json messages = history;
  const json* input = find(body, "input");
  if (!input) throw bad_request("'input' is required", "input");
  if (input->is_string()) {
    messages.push_back({{"role", "user"}, {"content", input->get<std::string>()}});
    return messages;
  }
  if (!input->is_array()) throw bad_request("'input' must be a string or a list of items, got " + std::string(type_name(*input)), "input");
  if (input->empty()) throw bad_request("'input' must not be empty", "input");
  std::string reasoning;  // of a reasoning item, for the next assistant message
  // Function calls join the assistant message right before them (one turn: text, then calls).
  auto assistant_turn = [&]() -> json& {
    if (messages.empty() || messages.back()["role"] != "assistant")
      messages.push_back({{"role", "assistant"}, {"content", ""}});
    json& m = messages.back();
    if (!reasoning.empty()) m["reasoning_content"] = std::exchange(reasoning, "");
    return m;
  };
  for (size_t i = 0; i < input->size(); ++i) {
    const json& item = (*input)[i];
    const std::string path = "input[" + std::to_string(i) + "]";
    if (!item.is_object()) throw bad_request("'" + path + "' must be an object", "input");
    const json* type_v = find(item, "type");
    if (type_v && !type_v->is_string()) throw bad_request("'" + path + ".type' must be a string", "input");
    const std::string type = type_v ? type_v->get<std::string>() : "message";
    if (type == "message") {
      std::string role = required_string(item, "role", path);
      if (role == "developer") role = "system";
      if (role != "user" && role != "system" && role != "assistant")
        throw bad_request("'" + path + ".role' must be one of user, system, developer, assistant; got '" + role + "'",
                          "input");
      const json* content = find(item, "content");
      if (!content) throw bad_request("'" + path + ".content' is required", "input");
      std::string text = content_text(*content, path + ".content");
      if (role == "assistant") {
        // A new assistant message: an earlier one may already have had its calls.
        messages.push_back({{"role", "assistant"}, {"content", std::move(text)}});
        if (!reasoning.empty()) messages.back()["reasoning_content"] = std::exchange(reasoning, "");
      } else {
        messages.push_back({{"role", role}, {"content", std::move(text)}});
      }
    } else if (type == "function_call") {
      json call = {{"id", required_string(item, "call_id", path)},
                   {"type", "function"},
                   {"function", {{"name", required_string(item, "name", path)},
                                 {"arguments", required_string(item, "arguments", path)}}}};
      json& m = assistant_turn();
      if (!m.contains("tool_calls")) m["tool_calls"] = json::array();
      m["tool_calls"].push_back(std::move(call));
    } else if (type == "function_call_output") {
      const std::string call_id = required_string(item, "call_id", path);
      // As OpenAI: the output of a call that no earlier function_call (in this input or the
      // stored conversation it continues) made is refused, not shown to the model as a result
      // of nothing.
      const bool known = std::any_of(messages.begin(), messages.end(), [&](const json& m) {
        const json* calls = find(m, "tool_calls");
        return calls && calls->is_array() && std::any_of(calls->begin(), calls->end(), [&](const json& c) {
                 return c.is_object() && c.contains("id") && c["id"] == call_id;
               });
      });
      if (!known)
        throw bad_request("'" + path + ".call_id': no tool call found for function call output with call_id '" +
                              call_id + "' (no earlier function_call item has it)",
                          "input");
      const json* output = find(item, "output");
      if (!output) throw bad_request("'" + path + ".output' is required", "input");
      messages.push_back({{"role", "tool"}, {"tool_call_id", call_id}, {"content", content_text(*output, path + ".output")}});
    } else if (type == "reasoning") {
      reasoning = reasoning_text(item, path);
    } else if (type == "item_reference") {
      throw bad_request("'" + path + "': item references are not supported (send the items themselves, or "
                        "continue a stored response with previous_response_id)", "input");
    } else {
      throw bad_request("'" + path + "': input item type '" + type +
                            "' is not supported (message, function_call, function_call_output and reasoning are)",
                        "input");
    }
  }
  return messages;
}

// `input` (already checked by conversation()) as item objects: every item keeps what it gave
// and gains an id (OpenAI's prefix for its type) and a "completed" status where it has none; a
// message's string content becomes one input_text (output_text for an assistant) part.
json input_items(const json& body) {
  const json& input = body.at("input");
  if (input.is_string())
    return json::array({{{"id", response_item_id("msg")},
                         {"type", "message"},
                         {"role", "user"},
                         {"status", "completed"},
                         {"content", json::array({{{"type", "input_text"}, {"text", input}}})}}});
  json items = json::array();
  for (const json& given : input) {
    json item = given;
    const std::string type = item.value("type", "message");
    item["type"] = type;
    if (!item.contains("id") || !item["id"].is_string()) {
      const char* prefix = type == "message" ? "msg" : type == "function_call" ? "fc" : type == "reasoning" ? "rs" : "fco";
      item["id"] = response_item_id(prefix);
    }
    if (type != "reasoning" && !item.contains("status")) item["status"] = "completed";
    if (type == "message" && item["content"].is_string()) {
      const bool assistant = item["role"] == "assistant";
      json part = {{"type", assistant ? "output_text" : "input_text"}, {"text", item["content"]}};
      if (assistant) part["annotations"] = json::array();
      item["content"] = json::array({std::move(part)});
    }
    items.push_back(std::move(item));
  }
  return items;
}

// Function tools {type, name, description, parameters, strict} as chat tools.
json chat_tools(const json& tools) {
  if (!tools.is_array()) throw bad_request("'tools' must be a list", "tools");
  json out = json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const std::string p = "tools[" + std::to_string(i) + "]";
    const json* type = t.is_object() ? find(t, "type") : nullptr;
    if (!type || !type->is_string()) throw bad_request("'" + p + ".type' must be a string", "tools");
    if (*type != "function")
      throw bad_request("'" + p + "': tool type '" + type->get<std::string>() +
                            "' is not supported (this server runs function tools only)", "tools");
    json fn = {{"name", nullptr}};
    fn["name"] = required_string(t, "name", p, "tools");
    for (const char* key : {"description", "parameters", "strict"})
      if (const json* v = find(t, key)) fn[key] = *v;
    if (auto s = fn.find("strict"); s != fn.end() && !s->is_boolean())
      throw bad_request("'" + p + ".strict' must be a boolean", "tools");
    out.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return out;
}

// tool_choice: "auto", "none", "required" or {"type": "function", "name": f}.
json chat_tool_choice(const json& tc) {
  if (tc.is_string() && (tc == "auto" || tc == "none" || tc == "required")) return tc;
  const json* type = tc.is_object() ? find(tc, "type") : nullptr;
  const json* name = tc.is_object() ? find(tc, "name") : nullptr;
  if (type && *type == "function" && name && name->is_string())
    return {{"type", "function"}, {"function", {{"name", *name}}}};
  throw bad_request("'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...} "
                    "(hosted tools are not served)", "tool_choice");
}

// text.format: {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "name",
// "schema", "strict", "description"}, as a chat response_format.
json chat_response_format(const json& text) {
  if (!text.is_object()) throw bad_request("'text' must be an object", "text");
  for (auto it = text.begin(); it != text.end(); ++it)
    if (it.key() != "format" && it.key() != "verbosity")
      throw bad_request("Unrecognized request argument supplied: text." + it.key(), "text");
  if (const json* v = find(text, "verbosity"); v && !(v->is_string() && (*v == "low" || *v == "medium" || *v == "high")))
    throw bad_request("'text.verbosity' must be \"low\", \"medium\" or \"high\"", "text.verbosity");
  const json* f = find(text, "format");
  if (!f) return json();
  const json* type = f->is_object() ? find(*f, "type") : nullptr;
  const std::string t = type && type->is_string() ? type->get<std::string>() : "";
  if (t == "text" || t == "json_object") return {{"type", t}};
  if (t != "json_schema")
    throw bad_request("'text.format' must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": "
                      "\"json_schema\", \"name\": ..., \"schema\": {...}}", "text.format");
  const json* schema = find(*f, "schema");
  if (!schema) throw bad_request("'text.format.schema' is required with type json_schema", "text.format");
  json js = {{"name", f->value("name", "response")}, {"schema", *schema}};
  if (const json* s = find(*f, "strict")) js["strict"] = *s;
  return {{"type", "json_schema"}, {"json_schema", std::move(js)}};
}

// Accepted, with nothing to do here: OpenAI's routing, caching and moderation knobs.
const std::set<std::string>& accepted_fields() {
  static const std::set<std::string> f = {"service_tier", "prompt_cache_key", "prompt_cache_retention",
                                          "safety_identifier", "max_tool_calls", "moderation", "stream_options"};
  return f;
}

// vLLM's sampling extensions, handed to the chat request as they are.
const std::set<std::string>& passthrough_fields() {
  static const std::set<std::string> f = {
      "model", "temperature", "top_p", "stream", "top_k", "min_p", "repetition_penalty", "presence_penalty",
      "frequency_penalty", "seed", "stop", "stop_token_ids", "ignore_eos", "min_tokens", "logit_bias", "cache_salt",
      "chat_template_kwargs", "skip_special_tokens", "include_stop_str_in_output", "request_id", "priority",
      "truncate_prompt_tokens", "structured_outputs", "return_tokens_as_token_ids"};
  return f;
}

}  // namespace

ApiError responses_error(const ApiError& e) {
  // Longest names first. In the message a name is renamed where it is quoted ('messages[2]'),
  // and a dotted path also inside a schema error's path ("response_format.json_schema.schema.type").
  static const std::pair<std::string, std::string> renames[] = {
      {"response_format.json_schema.schema", "text.format.schema"},
      {"response_format.json_schema", "text.format"},
      {"response_format", "text.format"},
      {"max_completion_tokens", "max_output_tokens"},
      {"max_tokens", "max_output_tokens"},
      {"messages", "input"},
  };
  std::string message = e.what(), param = e.param;
  for (const auto& [from, to] : renames) {
    if (param == from) param = to;
    const bool dotted = from.find('.') != std::string::npos;
    const std::string f = dotted ? from : "'" + from, t = dotted ? to : "'" + to;
    for (size_t at = message.find(f); at != std::string::npos; at = message.find(f, at + t.size()))
      message.replace(at, f.size(), t);
  }
  return ApiError(e.status, message, e.type, param, e.code);
}

std::optional<std::string> previous_response_id(const json& body) { return get_string(body, "previous_response_id"); }

ResponsesRequest parse_responses_request(const json& body, const json& history) {
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& k = it.key();
    static const std::set<std::string> own = {"input", "instructions", "max_output_tokens", "tools", "tool_choice",
                                              "parallel_tool_calls", "text", "top_logprobs", "include", "reasoning",
                                              "metadata", "user", "truncation", "previous_response_id", "store",
                                              "conversation", "background", "prompt", "context_management"};
    if (!own.count(k) && !accepted_fields().count(k) && !passthrough_fields().count(k))
      throw bad_request("Unrecognized request argument supplied: " + k, k);
  }
  previous_response_id(body);
  reject_unsupported(body, "conversation", " (conversations are not stored here: send the turns in 'input', or "
                                           "continue a stored response with previous_response_id)");
  reject_unsupported(body, "prompt", " (no prompt templates are stored here)");
  reject_unsupported(body, "context_management", "");
  if (get_bool(body, "background").value_or(false)) {
    if (!get_bool(body, "store").value_or(true))
      throw bad_request("'background' needs 'store': a background response is stored to be polled", "background");
  }
  if (auto t = get_string(body, "truncation"); t && *t != "disabled" && *t != "auto")
    throw bad_request("'truncation' must be \"auto\" or \"disabled\", got \"" + *t + "\"", "truncation");
  if (const json* so = find(body, "stream_options")) {
    if (!so->is_object()) throw bad_request("'stream_options' must be an object", "stream_options");
    for (auto it = so->begin(); it != so->end(); ++it)
      if (it.key() != "include_obfuscation") throw bad_request("Unrecognized stream option: " + it.key(), "stream_options");
  }

  ResponsesRequest r;
  json chat = json::object();
  for (auto it = body.begin(); it != body.end(); ++it)
    if (passthrough_fields().count(it.key())) chat[it.key()] = it.value();
  r.conversation = conversation(body, history);
  r.input_items = input_items(body);
  r.instructions = get_string(body, "instructions");
  json messages = json::array();
  if (r.instructions) messages.push_back({{"role", "system"}, {"content", *r.instructions}});
  for (const json& m : r.conversation) messages.push_back(m);
  chat["messages"] = std::move(messages);
  r.previous_response_id = previous_response_id(body);
  r.store = get_bool(body, "store").value_or(true);
  r.background = get_bool(body, "background").value_or(false);
  r.truncate_auto = get_string(body, "truncation").value_or("disabled") == "auto";

  r.max_output_tokens = get_int(body, "max_output_tokens");
  if (r.max_output_tokens) {
    if (*r.max_output_tokens < 1)
      throw bad_request("'max_output_tokens' must be at least 1, got " + std::to_string(*r.max_output_tokens),
                        "max_output_tokens");
    chat["max_tokens"] = *r.max_output_tokens;
  }
  if (const json* tools = find(body, "tools")) {
    r.tools = *tools;
    json ct = chat_tools(*tools);
    if (!ct.empty()) chat["tools"] = std::move(ct);
  }
  if (const json* tc = find(body, "tool_choice")) {
    r.tool_choice = *tc;
    chat["tool_choice"] = chat_tool_choice(*tc);
  }
  r.parallel_tool_calls = get_bool(body, "parallel_tool_calls").value_or(true);
  if (const json* text = find(body, "text")) {
    json rf = chat_response_format(*text);
    if (!rf.is_null()) {
      r.text_format = (*text)["format"];
      chat["response_format"] = std::move(rf);
    }
  }
  if (const json* reasoning = find(body, "reasoning")) {
    if (!reasoning->is_object()) throw bad_request("'reasoning' must be an object", "reasoning");
    for (auto it = reasoning->begin(); it != reasoning->end(); ++it)
      if (it.key() != "effort" && it.key() != "summary" && it.key() != "generate_summary")
        throw bad_request("Unrecognized request argument supplied: reasoning." + it.key(), "reasoning");
    for (const char* key : {"effort", "summary", "generate_summary"})
      if (const json* v = find(*reasoning, key); v && !v->is_string())
        throw bad_request(std::string("'reasoning.") + key + "' must be a string, got " + type_name(*v), "reasoning");
    for (auto it = reasoning->begin(); it != reasoning->end(); ++it) r.reasoning[it.key()] = it.value();
  }
  if (const json* m = find(body, "metadata")) {
    if (!m->is_object()) throw bad_request("'metadata' must be an object of strings", "metadata");
    for (auto it = m->begin(); it != m->end(); ++it)
      if (!it->is_string()) throw bad_request("'metadata." + it.key() + "' must be a string", "metadata");
    r.metadata = *m;
  }
  r.user = get_string(body, "user");

  // Logprobs: asked for with include ["message.output_text.logprobs"] (OpenAI) or a
  // top_logprobs count.
  bool logprobs = false;
  if (const json* include = find(body, "include")) {
    if (!include->is_array()) throw bad_request("'include' must be a list of strings", "include");
    for (const json& v : *include) {
      if (v == "message.output_text.logprobs") {
        logprobs = true;
      } else if (v != "reasoning.encrypted_content") {
        throw bad_request("'include': " + (v.is_string() ? "\"" + v.get<std::string>() + "\"" : v.dump()) +
                              " is not supported (message.output_text.logprobs and reasoning.encrypted_content are)",
                          "include");
      }
    }
  }
  r.top_logprobs = get_int(body, "top_logprobs");
  if (r.top_logprobs && (*r.top_logprobs < 0 || *r.top_logprobs > kMaxLogprobs))
    throw bad_request("'top_logprobs' must be in [0, " + std::to_string(kMaxLogprobs) + "], got " +
                          std::to_string(*r.top_logprobs), "top_logprobs");
  if (logprobs || r.top_logprobs) {
    chat["logprobs"] = true;
    chat["top_logprobs"] = r.top_logprobs.value_or(0);
  }

  try {
    r.chat = parse_chat_request(chat);
  } catch (const ApiError& e) {
    throw responses_error(e);
  }
  return r;
}

}  // namespace tllm
