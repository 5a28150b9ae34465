#include "server/protocol.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"
#include "engine/grammar.h"
#include "engine/json_schema.h"
#include "engine/regex.h"
#include "io/json.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/request_fields.h"

namespace tllm {
namespace {

using json = RequestJson;
using namespace request_fields;

int32_t token_id_value(const json& v, const std::string& param) {
  if (!v.is_number_integer() && !v.is_number_unsigned())
    throw bad_request("'" + param + "' must be a list of integer token ids, found " + type_name(v), param);
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max()))
    throw bad_request("'" + param + "': token id " + v.dump() + " is out of vocabulary", param);
  const int64_t x = v.get<int64_t>();
  if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max())
    throw bad_request("'" + param + "': token id " + v.dump() + " is out of vocabulary", param);
  return static_cast<int32_t>(x);
}

std::vector<int32_t> token_id_list(const json& v, const std::string& param) {
  if (!v.is_array())
    throw bad_request("'" + param + "' must be a list of integer token ids, got " + type_name(v), param);
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const json& x : v) ids.push_back(token_id_value(x, param));
  return ids;
}

const std::set<std::string>& common_fields() {
  static const std::set<std::string> f = {
      "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
      "presence_penalty", "frequency_penalty", "seed", "stop", "stop_token_ids", "n", "stream",
      "stream_options", "ignore_eos", "min_tokens", "skip_special_tokens",
      "include_stop_str_in_output", "return_tokens_as_token_ids", "return_token_ids", "logprobs", "prompt_logprobs", "logit_bias",
      "allowed_token_ids", "bad_words", "cache_salt", "use_beam_search", "length_penalty", "early_stopping",
      "best_of", "response_format", "add_special_tokens", "truncate_prompt_tokens", "guided_json",
      "guided_choice", "guided_regex", "guided_grammar", "guided_whitespace_pattern", "guided_decoding_backend",
      "structural_tag", "structured_outputs",
      // Accepted and ignored: they change nothing about the output here.
      "user", "metadata", "store", "service_tier", "spaces_between_special_tokens", "request_id",
      "priority"};
  return f;
}

// A JSON Schema from the request, compiled; its errors are 400s naming `param`.
std::shared_ptr<const JsonSchema> schema_of(const json& schema, const std::string& param, const std::string& path,
                                            bool any_whitespace) {
  try {
    return JsonSchema::compile(nlohmann::json(schema), any_whitespace);
  } catch (const InvalidArgument& e) {
    std::string why = e.what();
    if (why.rfind("schema", 0) == 0) why = path + why.substr(6);  // "schema.properties.x: ..." -> path.properties.x
    throw bad_request("'" + param + "': " + why, param);
  }
}

// Structured output: OpenAI's response_format (json_object, json_schema), vLLM's guided_json /
// guided_choice / guided_regex and structured_outputs {json, choice, regex, json_object}; at most
// one of them.
void parse_output_format(const json& body, GenerationRequest& r) {
  // vLLM's structured_outputs.disable_any_whitespace: JSON without whitespace between tokens.
  bool any_whitespace = true;
  if (const json* so = find(body, "structured_outputs"); so && so->is_object())
    if (const json* d = find(*so, "disable_any_whitespace")) {
      if (!d->is_boolean())
        throw bad_request("'structured_outputs.disable_any_whitespace' must be a boolean", "structured_outputs");
      any_whitespace = !d->get<bool>();
    }
  const auto object = [&] { return OutputPiece::value(JsonSchema::any_object(any_whitespace)); };
  const auto set = [&](const std::string& field, std::vector<OutputPiece> format) {
    if (r.output_format_field == field)  // two keys of structured_outputs
      throw bad_request("'" + field + "' holds more than one constraint (json, choice, regex, grammar, json_object); "
                        "give one", field);
    if (!r.output_format_field.empty())
      throw bad_request("'" + field + "' and '" + r.output_format_field + "' both constrain the output; give one", field);
    r.output_format_field = field;
    r.output_format = std::move(format);
  };
  const auto choice = [&](const json& v, const std::string& field) {
    if (!v.is_array() || v.empty())
      throw bad_request("'" + field + "' must be a non-empty list of strings", field);
    std::vector<std::string> texts;
    for (const json& c : v) {
      if (!c.is_string() || c.get<std::string>().empty())
        throw bad_request("'" + field + "' must be a non-empty list of non-empty strings", field);
      texts.push_back(c.get<std::string>());
    }
    set(field, {OutputPiece::any_of(std::move(texts))});
  };
  // A schema given as an object, or as its JSON text (vLLM takes both).
  const auto schema = [&](const json& v, const std::string& field, const std::string& path) {
    json s = v;
    if (v.is_string()) {
      s = json::parse(v.get<std::string>(), nullptr, /*allow_exceptions=*/false);
      if (s.is_discarded()) throw bad_request("'" + field + "' is a string but not a JSON text", field);
    }
    if (!s.is_object() && !s.is_boolean())
      throw bad_request("'" + field + "' must be a JSON Schema object, got " + std::string(type_name(s)), field);
    set(field, {OutputPiece::value(schema_of(s, field, path, any_whitespace))});
  };
  if (const json* rf = find(body, "response_format")) {
    const json* type = rf->is_object() ? find(*rf, "type") : nullptr;
    const std::string t = type && type->is_string() ? type->get<std::string>() : "";
    if (t == "json_object") {
      set("response_format", {object()});
    } else if (t == "json_schema") {
      const json* js = find(*rf, "json_schema");
      if (!js || !js->is_object())
        throw bad_request("'response_format.json_schema' must be an object with the 'schema' (and a 'name')",
                          "response_format");
      const json* s = find(*js, "schema");
      if (s && !s->is_object() && !s->is_boolean())
        throw bad_request(std::string("'response_format.json_schema.schema' must be a JSON Schema object, got ") + type_name(*s),
                          "response_format");
      // No schema: any JSON value.
      set("response_format", {OutputPiece::value(schema_of(s ? *s : json(true), "response_format",
                                                           "response_format.json_schema.schema", any_whitespace))});
    } else if (t != "text") {
      throw bad_request("'response_format' must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or "
                        "{\"type\": \"json_schema\", \"json_schema\": {...}}", "response_format");
    }
  }
  // A text form (a regular expression, a grammar) compiled into the output piece; its errors are
  // 400s naming the field.
  const auto text_form = [&](const json& v, const std::string& field, const char* what, auto piece_of) {
    if (!v.is_string()) throw bad_request("'" + field + "' must be a string (" + what + ")", field);
    try {
      set(field, {piece_of(v.get<std::string>())});
    } catch (const InvalidArgument& e) {
      throw bad_request("'" + field + "': " + e.what(), field);
    }
  };
  const auto regex = [&](const json& v, const std::string& field) {
    text_form(v, field, "a regular expression",
              [](const std::string& t) { return OutputPiece::matching(Regex::compile(t)); });
  };
  const auto grammar = [&](const json& v, const std::string& field) {
    text_form(v, field, "a grammar in GBNF", [](const std::string& t) { return OutputPiece::sentence(Grammar::compile(t)); });
  };
  if (const json* g = find(body, "guided_json")) schema(*g, "guided_json", "guided_json");
  if (const json* g = find(body, "guided_choice")) choice(*g, "guided_choice");
  if (const json* g = find(body, "guided_regex")) regex(*g, "guided_regex");
  if (const json* g = find(body, "guided_grammar")) grammar(*g, "guided_grammar");
  for (const char* key : {"guided_whitespace_pattern", "structural_tag"})
    reject_unsupported(body, key, " (structured output here takes JSON schemas, choices, regular expressions and grammars)");
  if (const json* so = find(body, "structured_outputs")) {
    if (!so->is_object()) throw bad_request("'structured_outputs' must be an object", "structured_outputs");
    for (auto it = so->begin(); it != so->end(); ++it) {
      const std::string k = it.key();
      if (it->is_null()) continue;
      if (k == "json") {
        schema(*it, "structured_outputs", "structured_outputs.json");
      } else if (k == "choice") {
        choice(*it, "structured_outputs");
      } else if (k == "regex") {
        regex(*it, "structured_outputs");
      } else if (k == "grammar") {
        grammar(*it, "structured_outputs");
      } else if (k == "json_object") {
        if (!it->is_boolean()) throw bad_request("'structured_outputs.json_object' must be a boolean", "structured_outputs");
        if (it->get<bool>()) set("structured_outputs", {object()});
      } else if (k == "disable_any_whitespace") {
        // read above
      } else if (k == "disable_fallback" || k == "disable_additional_properties") {
        // vLLM's backend switches: nothing to switch here (no fallback backend; properties
        // without additionalProperties already allow no other keys).
      } else {
        throw bad_request("'structured_outputs." + k + "' is not supported by this server (json, choice, regex, "
                          "grammar and json_object are)", "structured_outputs");
      }
    }
  }
  if (const json* b = find(body, "guided_decoding_backend"); b && !b->is_string())
    throw bad_request("'guided_decoding_backend' must be a string", "guided_decoding_backend");
}

void parse_common(const json& body, GenerationRequest& r) {
  r.model = get_string(body, "model");
  // Chat: max_completion_tokens is the current name, max_tokens the deprecated one.
  const std::string max_key = find(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  r.max_tokens = get_int(body, max_key);
  if (r.max_tokens && *r.max_tokens < 1)
    throw bad_request("'" + max_key + "' must be at least 1, got " + std::to_string(*r.max_tokens), max_key);

  r.temperature = get_number(body, "temperature");
  check_range(r.temperature, "temperature", 0.0, false, 2.0, "[0, 2]");
  r.top_p = get_number(body, "top_p");
  check_range(r.top_p, "top_p", 0.0, true, 1.0, "(0, 1]");
  r.top_k = get_int(body, "top_k");
  if (r.top_k && *r.top_k < -1)
    throw bad_request("'top_k' must be -1 or 0 (disabled) or a positive integer, got " +
                          std::to_string(*r.top_k), "top_k");
  r.min_p = get_number(body, "min_p");
  check_range(r.min_p, "min_p", 0.0, false, 1.0, "[0, 1]");
  r.repetition_penalty = get_number(body, "repetition_penalty");
  check_range(r.repetition_penalty, "repetition_penalty", 0.0, true, 2.0, "(0, 2]");
  auto presence = get_number(body, "presence_penalty");
  check_range(presence, "presence_penalty", -2.0, false, 2.0, "[-2, 2]");
  r.presence_penalty = presence.value_or(0.0);
  auto frequency = get_number(body, "frequency_penalty");
  check_range(frequency, "frequency_penalty", -2.0, false, 2.0, "[-2, 2]");
  r.frequency_penalty = frequency.value_or(0.0);

  r.seed = get_integer(body, "seed", std::numeric_limits<int64_t>::min(),
                       std::numeric_limits<int64_t>::max());
  if (r.seed && *r.seed == -1) r.seed.reset();  // vLLM: -1 means "no seed"

  if (const json* stop = find(body, "stop")) {
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const json& s : *stop) {
        if (!s.is_string()) throw bad_request("'stop' must be a string or a list of strings", "stop");
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      throw bad_request("'stop' must be a string or a list of strings, got " + std::string(type_name(*stop)), "stop");
    }
    for (const auto& s : r.stop)
      if (s.empty()) throw bad_request("'stop' cannot contain an empty string", "stop");
  }
  if (const json* ids = find(body, "stop_token_ids")) r.stop_token_ids = token_id_list(*ids, "stop_token_ids");

  if (auto n = get_int(body, "n")) r.n = *n;
  if (r.n < 1 || r.n > kMaxChoices)
    throw bad_request("'n' must be in [1, " + std::to_string(kMaxChoices) + "], got " + std::to_string(r.n), "n");
  r.best_of = get_int(body, "best_of").value_or(r.n);
  if (r.best_of < r.n || r.best_of > kMaxChoices)
    throw bad_request("'best_of' must be in [n, " + std::to_string(kMaxChoices) + "] (n = " + std::to_string(r.n) +
                          "), got " + std::to_string(r.best_of), "best_of");

  r.stream = get_bool(body, "stream").value_or(false);
  if (const json* so = find(body, "stream_options")) {
    if (!r.stream)
      throw bad_request("'stream_options' can only be given when 'stream' is true", "stream_options");
    if (!so->is_object()) throw bad_request("'stream_options' must be an object", "stream_options");
    for (auto it = so->begin(); it != so->end(); ++it) {
      if (it.key() == "include_usage") {
        if (!it->is_null() && !it->is_boolean())
          throw bad_request("'stream_options.include_usage' must be a boolean", "stream_options");
        r.include_usage = it->is_boolean() && it->get<bool>();
      } else if (it.key() == "continuous_usage_stats") {
        if (!it->is_null() && !it->is_boolean())
          throw bad_request("'stream_options.continuous_usage_stats' must be a boolean", "stream_options");
        r.continuous_usage = it->is_boolean() && it->get<bool>();
      } else {
        throw bad_request("Unrecognized stream option: " + it.key(), "stream_options");
      }
    }
    r.continuous_usage = r.continuous_usage && r.include_usage;  // as vLLM: only with include_usage
  }

  r.ignore_eos = get_bool(body, "ignore_eos").value_or(false);
  r.use_beam_search = get_bool(body, "use_beam_search").value_or(false);
  if (const json* lp = find(body, "length_penalty")) {
    if (!lp->is_number() || !std::isfinite(lp->get<double>()))
      throw bad_request(std::string("'length_penalty' must be a finite number, got ") + type_name(*lp), "length_penalty");
    r.length_penalty = lp->get<double>();
  }
  get_bool(body, "early_stopping");  // accepted and ignored, as vLLM's beam search does
  if (const auto salt = get_string(body, "cache_salt")) {
    if (salt->empty()) throw bad_request("'cache_salt' must be a non-empty string when given", "cache_salt");
    r.cache_salt = *salt;
  }
  r.min_tokens = get_int(body, "min_tokens").value_or(0);
  if (r.min_tokens < 0)
    throw bad_request("'min_tokens' must be at least 0, got " + std::to_string(r.min_tokens), "min_tokens");
  if (r.max_tokens && r.min_tokens > *r.max_tokens)
    throw bad_request("'min_tokens' must be at most max_tokens=" + std::to_string(*r.max_tokens) +
                          ", got " + std::to_string(r.min_tokens), "min_tokens");
  r.skip_special_tokens = get_bool(body, "skip_special_tokens").value_or(true);
  r.include_stop_str_in_output = get_bool(body, "include_stop_str_in_output").value_or(false);
  r.return_tokens_as_token_ids = get_bool(body, "return_tokens_as_token_ids").value_or(false);
  r.return_token_ids = get_bool(body, "return_token_ids").value_or(false);

  if (const json* lb = find(body, "logit_bias")) {
    // {"token id": bias}: ids as decimal strings (JSON keys), biases clamped to [-100, 100] as
    // vLLM does; ids outside the vocabulary are refused when the request is submitted.
    if (!lb->is_object())
      throw bad_request("'logit_bias' must be an object mapping token ids to biases, got " + std::string(type_name(*lb)),
                        "logit_bias");
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      const std::string& key = it.key();
      int64_t id = -1;
      const bool digits = !key.empty() && key.size() <= 10 && key.find_first_not_of("0123456789") == std::string::npos;
      if (digits) id = std::stoll(key);
      if (!digits || id > std::numeric_limits<int32_t>::max())
        throw bad_request("'logit_bias': key \"" + sanitize_utf8(key.substr(0, 40)) + "\" is not a token id", "logit_bias");
      if (!it->is_number())
        throw bad_request("'logit_bias': the bias of token " + key + " must be a number, got " + type_name(*it),
                          "logit_bias");
      const double bias = std::clamp(it->get<double>(), -100.0, 100.0);
      r.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(bias));
    }
  }
  if (const json* a = find(body, "allowed_token_ids"); a && !a->is_null()) {
    r.allowed_token_ids = token_id_list(*a, "allowed_token_ids");
    if (r.allowed_token_ids.empty())
      throw bad_request("'allowed_token_ids' must list at least one token id", "allowed_token_ids");
  }
  if (const json* bw = find(body, "bad_words"); bw && !bw->is_null()) {
    if (!bw->is_array()) throw bad_request(std::string("'bad_words' must be a list of strings, got ") + type_name(*bw), "bad_words");
    for (const json& w : *bw) {
      if (!w.is_string()) throw bad_request("'bad_words' must be a list of strings", "bad_words");
      std::string word = w.get<std::string>();
      if (word.find_first_not_of(" \t\n\r") == std::string::npos)
        throw bad_request("'bad_words' cannot contain an empty or blank word", "bad_words");
      r.bad_words.push_back(std::move(word));
    }
  }
  if (auto pl = get_int(body, "prompt_logprobs")) {
    if (*pl < 0 || *pl > kMaxLogprobs)
      throw bad_request("'prompt_logprobs' must be in [0, " + std::to_string(kMaxLogprobs) + "], got " +
                            std::to_string(*pl), "prompt_logprobs");
    if (r.stream) throw bad_request("'prompt_logprobs' is not available when 'stream' is true", "prompt_logprobs");
    r.prompt_logprobs = *pl;
  }
  parse_output_format(body, r);
  if (!r.allowed_token_ids.empty() && !r.output_format.empty())
    throw bad_request("'allowed_token_ids' cannot be combined with '" + r.output_format_field + "'", "allowed_token_ids");
  if (auto t = get_integer(body, "truncate_prompt_tokens", -1)) {
    if (*t == 0)
      throw bad_request("'truncate_prompt_tokens' must be -1 (the context length) or at least 1, got 0",
                        "truncate_prompt_tokens");
    r.truncate_prompt_tokens = static_cast<int>(*t);
  }
  get_int(body, "priority");
  get_bool(body, "spaces_between_special_tokens");
  if (const json* u = find(body, "user"); u && !u->is_string())
    throw bad_request("'user' must be a string", "user");
}

// Chat message content: a string, or text parts joined by newlines (as vLLM does).
std::string message_text(const json& content, const std::string& path) {
  return content_parts_text(content, path, "messages", {{"text", "text"}}, " (this server takes text only)");
}

json normalize_messages(const json& messages) {
  if (!messages.is_array())
    throw bad_request("'messages' must be a list of messages, got " + std::string(type_name(messages)), "messages");
  if (messages.empty()) throw bad_request("'messages' must not be empty", "messages");
  json out = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad_request("'" + param + "' must be an object", "messages");
    auto role_it = m.find("role");
    if (role_it == m.end() || !role_it->is_string())
      throw bad_request("'" + param + ".role' must be a string", "messages");
    std::string role = role_it->get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw bad_request("'" + param + ".role' must be one of system, developer, user, assistant, tool; got '" +
                            role + "'", "messages");
    json nm = json::object();
    for (auto it = m.begin(); it != m.end(); ++it) nm[it.key()] = it.value();
    nm["role"] = role;
    auto content = m.find("content");
    const bool has_tool_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
    if (content == m.end() || content->is_null()) {
      if (role != "assistant")
        throw bad_request("'" + param + ".content' is required for role " + role, "messages");
      // "" with or without tool calls, as vLLM hands string-content templates: templates that
      // concatenate message.content (ChatML ones like the demo model's) fail on null.
      nm["content"] = "";
    } else {
      nm["content"] = message_text(*content, param + ".content");
    }
    if (has_tool_calls) {
      const json& calls = m["tool_calls"];
      if (!calls.is_array()) throw bad_request("'" + param + ".tool_calls' must be a list", "messages");
      json ncalls = json::array();
      for (const json& c : calls) {
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
          throw bad_request("'" + param + ".tool_calls' entries must have a 'function' object", "messages");
        const std::string at = param + ".tool_calls[" + std::to_string(ncalls.size()) + "].function";
        const json& f = c["function"];
        if (!f.contains("name") || !f["name"].is_string())
          throw bad_request("'" + at + ".name' must be a string", "messages");
        if (!f.contains("arguments") || !(f["arguments"].is_string() || f["arguments"].is_object()))
          throw bad_request("'" + at + ".arguments' must be a JSON string (or an object)", "messages");
        json nc = c;
        json& fn = nc["function"];
        // Templates (Qwen's among them) print arguments with tojson and expect an object;
        // OpenAI sends a JSON string. Decode it when it holds an object, as vLLM does.
        if (fn.contains("arguments") && fn["arguments"].is_string()) {
          json parsed = json::parse(fn["arguments"].get<std::string>(), nullptr, false);
          if (!parsed.is_discarded() && parsed.is_object()) fn["arguments"] = std::move(parsed);
        }
        ncalls.push_back(std::move(nc));
      }
      nm["tool_calls"] = std::move(ncalls);
    }
    if (auto name = m.find("name"); name != m.end() && !name->is_null() && !name->is_string())
      throw bad_request("'" + param + ".name' must be a string", "messages");
    out.push_back(std::move(nm));
  }
  return out;
}

json parse_tools(const json& body) {
  const json* tools = find(body, "tools");
  if (!tools) return json();
  if (!tools->is_array()) throw bad_request("'tools' must be a list", "tools");
  for (size_t i = 0; i < tools->size(); ++i) {
    const json& t = (*tools)[i];
    const std::string p = "tools[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("type") || t["type"] != "function")
      throw bad_request("'" + p + ".type' must be \"function\"", "tools");
    if (!t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
        !t["function"]["name"].is_string() || t["function"]["name"].get_ref<const std::string&>().empty())
      throw bad_request("'" + p + ".function.name' must be a non-empty string", "tools");
    if (auto ps = t["function"].find("parameters"); ps != t["function"].end() && !ps->is_null() && !ps->is_object())
      throw bad_request("'" + p + ".function.parameters' must be a JSON Schema object", "tools");
    if (auto s = t["function"].find("strict"); s != t["function"].end() && !s->is_null() && !s->is_boolean())
      throw bad_request("'" + p + ".function.strict' must be a boolean", "tools");
  }
  return tools->empty() ? json() : *tools;
}

void parse_chat_fields(const json& body, ChatRequest& r) {
  const json* messages = find(body, "messages");
  if (!messages) throw bad_request("'messages' is required", "messages");
  r.messages = normalize_messages(*messages);
  r.tools = parse_tools(body);
  if (const json* tc = find(body, "tool_choice")) {
    // "auto", "none", "required" (some call), or {"type": "function", "function": {"name": f}}.
    const json* fn = tc->is_object() ? find(*tc, "function") : nullptr;
    const json* name = fn && fn->is_object() ? find(*fn, "name") : nullptr;
    if (tc->is_string() && *tc == "none") {
      r.tool_choice_none = true;
    } else if (tc->is_string() && *tc == "required") {
      r.force_tool_call = true;
    } else if (name && name->is_string()) {
      r.force_tool_call = true;
      r.forced_tool = name->get<std::string>();
    } else if (!(tc->is_string() && *tc == "auto")) {
      throw bad_request("'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
                        "\"function\": {\"name\": ...}}", "tool_choice");
    }
    if (r.force_tool_call) {
      if (r.tools.is_null()) throw bad_request("'tool_choice' forces a tool call, but 'tools' is empty", "tool_choice");
      bool known = r.forced_tool.empty();
      for (const json& t : r.tools) known |= t["function"]["name"] == r.forced_tool;
      if (!known) throw bad_request("'tool_choice' names tool '" + r.forced_tool + "', which is not in 'tools'", "tool_choice");
      if (!r.output_format_field.empty())
        throw bad_request("'" + r.output_format_field + "' cannot be combined with a forced tool call ('tool_choice')",
                          r.output_format_field);
    }
  }
  r.add_generation_prompt = get_bool(body, "add_generation_prompt").value_or(true);
  r.continue_final_message = get_bool(body, "continue_final_message").value_or(false);
  if (r.continue_final_message && r.add_generation_prompt)
    throw bad_request("Cannot set both 'continue_final_message' and 'add_generation_prompt' to true.",
                      "continue_final_message");
  if (r.continue_final_message && r.messages.back()["role"] != "assistant")
    throw bad_request("'continue_final_message' needs the last message to be from the assistant",
                      "continue_final_message");
  if (const json* kw = find(body, "chat_template_kwargs")) {
    if (!kw->is_object()) throw bad_request("'chat_template_kwargs' must be an object", "chat_template_kwargs");
    r.chat_template_kwargs = *kw;
  }
  r.add_special_tokens = get_bool(body, "add_special_tokens").value_or(false);
  reject_unsupported(body, "chat_template", " (the model's own template is used)");
}

}  // namespace

json parse_json_body(const std::string& body) {
  // nlohmann checks UTF-8 inside strings only; a stray byte outside one is a syntax error.
  // A value nested 100,000 levels deep parses, but copying it (chat_template_kwargs, tool
  // parameters, schemas) recursed once per level and overflowed the stack: the server died.
  const int depth = json_depth(body);
  if (depth > kMaxJsonDepth)
    throw bad_request("The request body nests arrays and objects " + std::to_string(depth) + " levels deep (at most " +
                      std::to_string(kMaxJsonDepth) + ")");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (!is_valid_utf8(body))
      throw bad_request("The request body is not valid UTF-8 (" + sanitize_utf8(what) + ")");
    throw bad_request("The request body is not valid JSON: " + what);
  }
  if (!j.is_object()) throw bad_request("The request body must be a JSON object, got " + std::string(type_name(j)));
  return j;
}

std::vector<PromptInput> parse_prompt_inputs(const json& v, const std::string& param) {
  const std::string shapes = "'" + param + "' must be a string, a list of strings, a list of token ids or a list of "
                             "lists of token ids";
  std::vector<PromptInput> out;
  if (v.is_string()) {
    out.emplace_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.empty()) throw bad_request("'" + param + "' must not be empty", param);
    const json& first = v[0];
    if (first.is_string()) {
      for (const json& p : v) {
        if (!p.is_string()) throw bad_request(shapes + "; found a mix", param);
        out.emplace_back(p.get<std::string>());
      }
    } else if (first.is_array()) {
      for (const json& p : v) {
        if (!p.is_array()) throw bad_request(shapes + "; found a mix", param);
        out.emplace_back(token_id_list(p, param));
      }
    } else if (first.is_number()) {
      out.emplace_back(token_id_list(v, param));
    } else {
      throw bad_request(shapes, param);
    }
  } else {
    throw bad_request("'" + param + "' must be a string or a list, got " + std::string(type_name(v)), param);
  }
  return out;
}

// use_beam_search runs a search of its own (server/beam_search.h): what it cannot honour is a
// 400 naming the field, not silently dropped.
static void check_beam_search(const GenerationRequest& r) {
  if (!r.use_beam_search) return;
  auto refuse = [](const std::string& field) {
    throw bad_request("'" + field + "' cannot be combined with 'use_beam_search'", field);
  };
  if (r.stream) refuse("stream");
  if (r.best_of != r.n) refuse("best_of");
  if (2 * r.n > kMaxLogprobs)
    throw bad_request("'n' (the beam width with use_beam_search) must be at most " + std::to_string(kMaxLogprobs / 2) +
                          ", got " + std::to_string(r.n), "n");
  if (r.logprobs >= 0) refuse("logprobs");
  if (r.prompt_logprobs >= 0) refuse("prompt_logprobs");
  if (!r.output_format.empty()) refuse(r.output_format_field);
  if (!r.stop.empty()) refuse("stop");
  if (!r.stop_token_ids.empty()) refuse("stop_token_ids");
  if (r.min_tokens > 0) refuse("min_tokens");
  if (!r.logit_bias.empty()) refuse("logit_bias");
  if (!r.allowed_token_ids.empty()) refuse("allowed_token_ids");
  if (!r.bad_words.empty()) refuse("bad_words");
  if (r.presence_penalty != 0.0) refuse("presence_penalty");
  if (r.frequency_penalty != 0.0) refuse("frequency_penalty");
  if (r.repetition_penalty && *r.repetition_penalty != 1.0) refuse("repetition_penalty");
}

CompletionRequest parse_completion_request(const json& body) {
  static const std::set<std::string> known = [] {
    auto k = common_fields();
    k.insert({"prompt", "echo", "suffix"});
    return k;
  }();
  check_known_fields(body, known);
  CompletionRequest r;
  parse_common(body, r);

  const json* prompt = find(body, "prompt");
  if (!prompt) throw bad_request("'prompt' is required", "prompt");
  r.prompts = parse_prompt_inputs(*prompt, "prompt");

  r.echo = get_bool(body, "echo").value_or(false);
  if (auto lp = get_int(body, "logprobs")) {
    if (*lp < 0 || *lp > kMaxLogprobs)
      throw bad_request("'logprobs' must be in [0, " + std::to_string(kMaxLogprobs) + "], got " +
                            std::to_string(*lp), "logprobs");
    r.logprobs = *lp;
  }
  r.add_special_tokens = get_bool(body, "add_special_tokens").value_or(true);
  reject_unsupported(body, "suffix", "");
  if (r.best_of > r.n && r.stream)
    throw bad_request("'best_of' greater than n cannot be streamed (the best are known only at the end)", "best_of");
  check_beam_search(r);
  return r;
}

ChatRequest parse_chat_request(const json& body) {
  static const std::set<std::string> known = [] {
    auto k = common_fields();
    k.insert({"messages", "max_completion_tokens", "top_logprobs", "tools", "tool_choice",
              "parallel_tool_calls", "add_generation_prompt", "continue_final_message",
              "chat_template_kwargs", "chat_template", "reasoning_effort", "functions",
              "function_call", "audio", "modalities", "prediction", "web_search_options",
              // Accepted and ignored, as in the Responses API: OpenAI's cache routing,
              // moderation and GPT-5 length hints.
              "prompt_cache_key", "prompt_cache_retention", "safety_identifier", "verbosity"});
    return k;
  }();
  check_known_fields(body, known);
  for (const char* key : {"functions", "function_call", "audio", "prediction", "web_search_options"})
    reject_unsupported(body, key, "");
  // Accepted and not acted on, but typed as OpenAI types it.
  get_string(body, "reasoning_effort");
  // modalities: text is what every reply is; anything else (audio) is refused.
  if (const RequestJson* m = find(body, "modalities"); m && !m->is_null()) {
    if (!m->is_array()) throw bad_request("'modalities' must be a list of strings", "modalities");
    for (const RequestJson& x : *m)
      if (!x.is_string() || x.get<std::string>() != "text")
        throw bad_request("'modalities': this server writes text only, got " + x.dump(), "modalities");
  }
  for (const char* key : {"prompt_cache_key", "safety_identifier"}) get_string(body, key);  // type checks
  if (const auto v = get_string(body, "prompt_cache_retention"); v && *v != "in-memory" && *v != "24h")
    throw bad_request("'prompt_cache_retention' must be \"in-memory\" or \"24h\", got \"" + sanitize_utf8(*v) + "\"",
                      "prompt_cache_retention");
  if (const auto v = get_string(body, "verbosity"); v && *v != "low" && *v != "medium" && *v != "high")
    throw bad_request("'verbosity' must be \"low\", \"medium\" or \"high\", got \"" + sanitize_utf8(*v) + "\"",
                      "verbosity");

  ChatRequest r;
  parse_common(body, r);
  if (r.best_of != r.n) throw bad_request("'best_of' is a completions field: chat takes n choices only", "best_of");
  parse_chat_fields(body, r);
  r.parallel_tool_calls = get_bool(body, "parallel_tool_calls").value_or(true);

  const bool logprobs = get_bool(body, "logprobs").value_or(false);
  const auto top = get_int(body, "top_logprobs");
  if (top && (*top < 0 || *top > kMaxLogprobs))
    throw bad_request("'top_logprobs' must be in [0, " + std::to_string(kMaxLogprobs) + "], got " +
                          std::to_string(*top), "top_logprobs");
  if (top && *top > 0 && !logprobs)
    throw bad_request("when using 'top_logprobs', 'logprobs' must be set to true", "top_logprobs");
  r.logprobs = logprobs ? top.value_or(0) : -1;
  check_beam_search(r);
  return r;
}

TokenizeRequest parse_tokenize_request(const json& body) {
  TokenizeRequest r;
  r.model = get_string(body, "model");
  r.return_token_strs = get_bool(body, "return_token_strs").value_or(false);
  if (body.contains("messages")) {
    static const std::set<std::string> known = {
        "model", "messages", "add_generation_prompt", "continue_final_message", "add_special_tokens",
        "chat_template_kwargs", "chat_template", "tools", "return_token_strs"};
    check_known_fields(body, known);
    ChatRequest chat;
    parse_chat_fields(body, chat);
    r.add_special_tokens = chat.add_special_tokens;
    r.chat = std::move(chat);
  } else {
    static const std::set<std::string> known = {"model", "prompt", "add_special_tokens", "return_token_strs"};
    check_known_fields(body, known);
    r.prompt = get_string(body, "prompt");
    if (!r.prompt) throw bad_request("'prompt' (a string) or 'messages' is required", "prompt");
    r.add_special_tokens = get_bool(body, "add_special_tokens").value_or(true);
  }
  return r;
}

DetokenizeRequest parse_detokenize_request(const json& body) {
  static const std::set<std::string> known = {"model", "tokens"};
  check_known_fields(body, known);
  DetokenizeRequest r;
  r.model = get_string(body, "model");
  const json* tokens = find(body, "tokens");
  if (!tokens) throw bad_request("'tokens' is required", "tokens");
  r.tokens = token_id_list(*tokens, "tokens");
  return r;
}

namespace {

// truncate_prompt_tokens of a pooling route: -1 (the context's length) or at least 1.
std::optional<int> truncation_of(const json& body) {
  auto t = get_int(body, "truncate_prompt_tokens");
  if (t && (*t < -1 || *t == 0)) throw bad_request("'truncate_prompt_tokens' must be -1 or at least 1", "truncate_prompt_tokens");
  return t;
}

}  // namespace

EmbeddingRequest parse_embedding_request(const json& body) {
  static const std::set<std::string> known = {"model", "input", "encoding_format", "dimensions", "user",
                                              "truncate_prompt_tokens", "add_special_tokens", "normalize"};
  check_known_fields(body, known);
  EmbeddingRequest r;
  r.model = get_string(body, "model");
  const json* input = find(body, "input");
  if (!input) throw bad_request("'input' is required", "input");
  r.inputs = parse_prompt_inputs(*input, "input");
  for (const PromptInput& p : r.inputs)
    if (const auto* text = std::get_if<std::string>(&p); text && text->empty())
      throw bad_request("'input' must not contain empty strings", "input");
  r.encoding_format = get_string(body, "encoding_format").value_or("float");
  if (r.encoding_format != "float" && r.encoding_format != "base64")
    throw bad_request("'encoding_format' must be \"float\" or \"base64\", got \"" + r.encoding_format + "\"",
                      "encoding_format");
  r.dimensions = get_int(body, "dimensions");
  if (r.dimensions && *r.dimensions < 1)
    throw bad_request("'dimensions' must be at least 1, got " + std::to_string(*r.dimensions), "dimensions");
  r.truncate_prompt_tokens = truncation_of(body);
  r.add_special_tokens = get_bool(body, "add_special_tokens").value_or(true);
  r.normalize = get_bool(body, "normalize");
  get_string(body, "user");  // accepted (OpenAI's), unused
  return r;
}

namespace {

// A text field: one non-empty string, or (list_ok) a non-empty list of them.
std::vector<std::string> texts_of(const json& body, const std::string& key, bool list_ok) {
  const json* v = find(body, key);
  if (!v) throw bad_request("'" + key + "' is required", key);
  std::vector<std::string> out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (list_ok && v->is_array() && !v->empty()) {
    for (const json& t : *v) {
      if (!t.is_string()) throw bad_request("'" + key + "' must be a string or a list of strings", key);
      out.push_back(t.get<std::string>());
    }
  } else {
    throw bad_request(list_ok ? "'" + key + "' must be a string or a non-empty list of strings" : "'" + key + "' must be a string",
                      key);
  }
  for (const std::string& t : out)
    if (t.empty()) throw bad_request("'" + key + "' must not contain empty strings", key);
  return out;
}

}  // namespace

ScoreRequest parse_score_request(const json& body) {
  check_known_fields(body, {"model", "text_1", "text_2", "truncate_prompt_tokens", "user", "encoding_format"});
  ScoreRequest r;
  r.model = get_string(body, "model");
  r.text_1 = texts_of(body, "text_1", true);
  r.text_2 = texts_of(body, "text_2", true);
  if (r.text_1.size() > 1 && r.text_1.size() != r.text_2.size())
    throw bad_request("'text_1' has " + std::to_string(r.text_1.size()) + " texts and 'text_2' " +
                          std::to_string(r.text_2.size()) + ": a list against a list must pair them one to one",
                      "text_2");
  r.truncate_prompt_tokens = truncation_of(body);
  get_string(body, "user");
  return r;
}

RerankRequest parse_rerank_request(const json& body) {
  check_known_fields(body, {"model", "query", "documents", "top_n", "return_documents", "truncate_prompt_tokens", "user"});
  RerankRequest r;
  r.model = get_string(body, "model");
  r.query = texts_of(body, "query", false)[0];
  r.documents = texts_of(body, "documents", true);
  r.top_n = get_int(body, "top_n");
  if (r.top_n && *r.top_n < 1) throw bad_request("'top_n' must be at least 1, got " + std::to_string(*r.top_n), "top_n");
  r.return_documents = get_bool(body, "return_documents").value_or(true);
  r.truncate_prompt_tokens = truncation_of(body);
  get_string(body, "user");
  return r;
}

void truncate_prompt(std::vector<int32_t>& ids, const GenerationRequest& r, int max_model_len) {
  if (!r.truncate_prompt_tokens) return;
  const int keep = *r.truncate_prompt_tokens == -1 ? max_model_len : *r.truncate_prompt_tokens;
  if (keep > max_model_len)
    throw bad_request("'truncate_prompt_tokens' (" + std::to_string(keep) + ") is larger than the model's context of " +
                          std::to_string(max_model_len) + " tokens",
                      "truncate_prompt_tokens");
  keep_last_tokens(ids, keep, max_model_len);
}

void keep_last_tokens(std::vector<int32_t>& ids, std::optional<int> k, int max_model_len) {
  if (!k) return;
  const size_t keep = static_cast<size_t>(*k == -1 ? max_model_len : *k);
  if (ids.size() > keep) ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(keep));
}

void check_token_ids(const std::vector<int32_t>& ids, int vocab_size, const std::string& param) {
  for (int32_t id : ids)
    if (id < 0 || id >= vocab_size)
      throw bad_request("Token id " + std::to_string(id) + " in '" + param + "' is out of vocabulary (the model has " +
                            std::to_string(vocab_size) + " tokens)", param);
}

void check_prompt_length(int prompt_len, int max_model_len, const std::string& param) {
  if (prompt_len == 0) throw bad_request("The prompt is empty (it has 0 tokens)", param);
  if (prompt_len >= max_model_len)
    throw bad_request("This model's maximum context length is " + std::to_string(max_model_len) +
                          " tokens. However, your request has " + std::to_string(prompt_len) +
                          " input tokens (at most " + std::to_string(max_model_len - 1) +
                          " leave room for one output token). Please reduce the length of the input.",
                      param);
}

size_t fewest_tokens(size_t text_bytes, size_t bytes_per_token) {
  return bytes_per_token ? (text_bytes + bytes_per_token - 1) / bytes_per_token : 0;
}

void check_text_fits(size_t text_bytes, size_t bytes_per_token, int max_tokens, int max_model_len,
                     const std::string& param) {
  const size_t fewest = fewest_tokens(text_bytes, bytes_per_token);
  if (fewest <= static_cast<size_t>(std::max(max_tokens, 0))) return;
  throw bad_request("This model's maximum context length is " + std::to_string(max_model_len) +
                        " tokens. However, your request has at least " + std::to_string(fewest) + " input tokens (" +
                        std::to_string(text_bytes) + " bytes of text; no token of this tokenizer stands for more than " +
                        std::to_string(bytes_per_token) + " bytes), and at most " + std::to_string(max_tokens) +
                        " fit. Please reduce the length of the input.",
                    param);
}

SamplingParams make_sampling_params(const GenerationRequest& r, const GenerationConfig& defaults,
                                    int prompt_len, int max_model_len, const std::string& prompt_param) {
  check_prompt_length(prompt_len, max_model_len, prompt_param);
  SamplingParams p;
  p.temperature = static_cast<float>(r.temperature ? *r.temperature : defaults.temperature.value_or(1.0));
  p.top_p = static_cast<float>(r.top_p ? *r.top_p : defaults.top_p.value_or(1.0));
  p.top_k = r.top_k ? *r.top_k : defaults.top_k.value_or(0);
  p.min_p = static_cast<float>(r.min_p ? *r.min_p : defaults.min_p.value_or(0.0));
  p.repetition_penalty =
      static_cast<float>(r.repetition_penalty ? *r.repetition_penalty : defaults.repetition_penalty.value_or(1.0));
  p.presence_penalty = static_cast<float>(r.presence_penalty);
  p.frequency_penalty = static_cast<float>(r.frequency_penalty);
  if (r.seed) p.seed = static_cast<uint64_t>(*r.seed);

  // As vLLM: the context bounds max_tokens (a larger request is clamped, finishing with
  // "length"); without one, generate until the context is full or generation_config's cap.
  const int room = max_model_len - prompt_len;
  int max_tokens = room;
  if (r.max_tokens) {
    max_tokens = std::min(*r.max_tokens, room);
  } else if (defaults.max_new_tokens && *defaults.max_new_tokens > 0) {
    max_tokens = std::min(*defaults.max_new_tokens, room);
  }
  p.max_tokens = max_tokens;
  p.min_tokens = std::min(r.min_tokens, max_tokens);
  p.ignore_eos = r.ignore_eos;
  p.cache_salt = r.cache_salt;
  p.stop = r.stop;
  p.stop_token_ids = r.stop_token_ids;
  p.logit_bias = r.logit_bias;
  p.allowed_token_ids = r.allowed_token_ids;
  p.output_format = r.output_format;
  p.include_stop_str_in_output = r.include_stop_str_in_output;
  p.skip_special_tokens = r.skip_special_tokens;
  p.logprobs = r.logprobs;
  p.prompt_logprobs = r.prompt_logprobs;
  return p;
}

}  // namespace tllm
