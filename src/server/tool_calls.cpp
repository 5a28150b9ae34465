#include "server/tool_calls.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/json_schema.h"
#include "server/json_text.h"
#include "server/serving.h"

namespace tllm {

ToolCallParser tool_call_parser_from_name(const std::string& name) {
  if (name == "hermes") return ToolCallParser::Hermes;
  if (name == "llama3_json") return ToolCallParser::Llama3Json;
  TLLM_CHECK_ARG(false, "unknown tool-call parser \"", name, "\" (supported: hermes, llama3_json)");
  return ToolCallParser::Hermes;
}

namespace {

// A call's arguments as the whole parse gives them: none or null "{}", a string its text, any
// other value compact JSON.
std::string call_arguments(const nlohmann::json& call, bool parameters_key) {
  auto args = call.find("arguments");
  if (args == call.end() && parameters_key) args = call.find("parameters");
  return args == call.end() || args->is_null() ? "{}"
         : args->is_string()                   ? args->get<std::string>()
                                               : args->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

ParsedToolCalls parse_tool_calls(std::string_view text, ToolCallParser format) {
  return format == ToolCallParser::Llama3Json ? parse_llama3_json_calls(text) : parse_tool_calls(text);
}

ParsedToolCalls parse_tool_calls(std::string_view text) {
  ParsedToolCalls out;
  size_t at = text.find(kToolCallOpen);
  if (at == std::string_view::npos) {
    out.content = std::string(text);
    return out;
  }
  out.content = std::string(text.substr(0, at));
  while (at != std::string_view::npos) {
    const size_t body = at + kToolCallOpen.size();
    const size_t close = text.find(kToolCallClose, body);
    std::string_view block = text.substr(body, close == std::string_view::npos ? text.npos : close - body);
    // The last block, unclosed: a reply cut inside its closing tag ("...}\n</tool_") is a call,
    // as the stream (which holds back what may become the tag) has it.
    if (close == std::string_view::npos) block = block.substr(0, text_before_tag(block, kToolCallClose));
    const nlohmann::json call = nlohmann::json::parse(block, nullptr, /*allow_exceptions=*/false);
    if (!call.is_object() || !call.contains("name") || !call["name"].is_string()) return {std::string(text), {}};
    out.calls.push_back({call["name"].get<std::string>(), call_arguments(call, false)});
    at = close == std::string_view::npos ? close : text.find(kToolCallOpen, close + kToolCallClose.size());
  }
  return out;
}

namespace {
bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

size_t skip_json_space(std::string_view text, size_t i) {
  while (i < text.size() && json_space(text[i])) ++i;
  return i;
}

namespace {

// The end (one past the closing quote) of the JSON string starting at t[i] == '"', or npos
// when it has not arrived whole.
size_t string_end(std::string_view t, size_t i) {
  for (size_t j = i + 1; j < t.size(); ++j) {
    if (t[j] == '\\') ++j;
    else if (t[j] == '"') return j + 1;
  }
  return std::string_view::npos;
}
// The end of the JSON value starting at t[i] (after its last byte), or npos when it has not
// arrived whole. Only the nesting is followed: a malformed value shows in the whole parse.
size_t value_end(std::string_view t, size_t i) {
  if (t[i] == '"') return string_end(t, i);
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    for (size_t j = i; j < t.size(); ++j) {
      const char c = t[j];
      if (c == '"') {
        j = string_end(t, j);
        if (j == std::string_view::npos) return j;
        --j;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return j + 1;
      }
    }
    return std::string_view::npos;
  }
  // A number or a literal: up to the next delimiter (it may go on while none has arrived).
  for (size_t j = i; j < t.size(); ++j)
    if (t[j] == ',' || t[j] == '}' || t[j] == ']' || json_space(t[j])) return j;
  return std::string_view::npos;
}
// Whether `token`, the text of a value that is not a string, object or array, is a JSON number or
// literal (`complete`), or may still become one as more arrives. A value that cannot (a tag, a
// word, nothing before the next ',' or '}') makes the body bad, so that it never goes out as a
// call's arguments.
bool scalar_ok(std::string_view token, bool complete) {
  if (token.empty()) return !complete;
  for (std::string_view literal : {"true", "false", "null"})
    if (literal.starts_with(token.substr(0, 1))) return complete ? token == literal : literal.starts_with(token);
  if (token[0] != '-' && (token[0] < '0' || token[0] > '9')) return false;
  if (complete) return nlohmann::json::parse(token, nullptr, /*allow_exceptions=*/false).is_number();
  return token.find_first_not_of("0123456789+-.eE") == std::string_view::npos;
}
std::optional<std::string> decode_string(std::string_view token) {
  const nlohmann::json v = nlohmann::json::parse(token, nullptr, /*allow_exceptions=*/false);
  if (!v.is_string()) return std::nullopt;
  return v.get<std::string>();
}

}  // namespace

ParsedToolCalls parse_llama3_json_calls(std::string_view text) {
  const ParsedToolCalls none{std::string(text), {}};
  size_t i = skip_json_space(text, 0);
  if (text.substr(i).starts_with(kPythonTag)) i = skip_json_space(text, i + kPythonTag.size());
  if (i == text.size() || text[i] != '{') return none;
  ParsedToolCalls out;
  while (true) {
    const size_t end = value_end(text, i);
    if (end == std::string_view::npos) return none;  // cut short: not a call object
    const nlohmann::json call = nlohmann::json::parse(text.substr(i, end - i), nullptr, /*allow_exceptions=*/false);
    if (!call.is_object() || !call.contains("name") || !call["name"].is_string()) return none;
    out.calls.push_back({call["name"].get<std::string>(), call_arguments(call, true)});
    size_t j = skip_json_space(text, end);
    if (j == text.size() || text[j] != ';') break;
    j = skip_json_space(text, j + 1);
    if (j == text.size() || text[j] != '{') break;
    i = j;
  }
  return out;  // what follows the last call is dropped
}

CallBodyScan scan_call_body(std::string_view body, bool parameters_key) {
  CallBodyScan r;
  size_t i = skip_json_space(body, 0);
  if (i == body.size()) return r;
  if (body[i] != '{') {
    r.bad = true;
    return r;
  }
  i = skip_json_space(body, i + 1);
  while (i < body.size() && body[i] != '}') {
    if (body[i] != '"') {
      r.bad = true;
      return r;
    }
    const size_t key_end = string_end(body, i);
    if (key_end == std::string_view::npos) return r;
    const std::optional<std::string> key = decode_string(body.substr(i, key_end - i));
    i = skip_json_space(body, key_end);
    if (i == body.size()) return r;
    if (!key || body[i] != ':') {
      r.bad = true;
      return r;
    }
    i = skip_json_space(body, i + 1);
    if (i == body.size()) return r;
    const size_t end = value_end(body, i);
    if (body[i] != '"' && body[i] != '{' && body[i] != '[' &&
        !scalar_ok(body.substr(i, end == std::string_view::npos ? body.npos : end - i), end != std::string_view::npos)) {
      r.bad = true;
      return r;
    }
    if (*key == "arguments" || (parameters_key && *key == "parameters" && r.args == CallBodyScan::Args::None)) {
      r.args = body[i] == '"'   ? CallBodyScan::Args::String
               : body[i] == 'n' ? CallBodyScan::Args::Null  // only null starts with n
                                : CallBodyScan::Args::Raw;
      r.args_begin = i;
      r.args_end = end == std::string_view::npos ? body.size() : end;
      r.args_complete = end != std::string_view::npos;
      if (r.args == CallBodyScan::Args::String && r.args_complete) {
        std::optional<std::string> s = decode_string(body.substr(i, end - i));
        if (!s) r.bad = true;
        else r.args_string = std::move(*s);
      }
    } else if (*key == "name" && end != std::string_view::npos && body[i] == '"') {
      r.name = decode_string(body.substr(i, end - i));
    }
    if (end == std::string_view::npos) return r;
    i = skip_json_space(body, end);
    if (i < body.size() && body[i] == ',') i = skip_json_space(body, i + 1);
    else if (i < body.size() && body[i] != '}') r.bad = true;
    if (r.bad) return r;
  }
  if (i < body.size()) r.end = i + 1;  // the closing brace
  return r;
}

size_t text_before_tag(std::string_view text, std::string_view tag) {
  const size_t at = text.find(tag);
  if (at != std::string_view::npos) return at;
  // The longest suffix that is a proper prefix of the tag is held back.
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == tag.substr(0, n)) return text.size() - n;
  return text.size();
}

size_t tool_call_free_prefix(std::string_view text) { return text_before_tag(text, kToolCallOpen); }

namespace {

bool strict(const nlohmann::ordered_json& function) {
  auto it = function.find("strict");
  return it != function.end() && it->is_boolean() && it->get<bool>();
}

// A tool's parameters document moved under the call object's "$defs" as `def`: its $refs
// ("#", "#/$defs/X", "#/definitions/X") pointed into it, and now must point to where it went,
// or they would name the call object ("#") or nothing. Literal values (const, enum, default,
// examples) are data, not schemas, and keep their "$ref" keys as written. `names`: s maps names
// to schemas (properties, $defs, ...), so a key there is a name, not a keyword: a property
// called "enum" is a schema like any other.
void rebase_refs(nlohmann::json& s, const std::string& def, bool names = false) {
  if (s.is_array()) {
    for (nlohmann::json& v : s) rebase_refs(v, def);
    return;
  }
  if (!s.is_object()) return;
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& key = it.key();
    if (names) {
      rebase_refs(*it, def);
      continue;
    }
    if (key == "const" || key == "enum" || key == "default" || key == "examples") continue;
    if (key == "properties" || key == "patternProperties" || key == "$defs" || key == "definitions" ||
        key == "dependentSchemas") {
      rebase_refs(*it, def, /*names=*/true);
      continue;
    }
    if (key == "$ref" && it->is_string()) {
      const std::string target = it->get<std::string>();
      if (target == "#") *it = "#/$defs/" + def;
      else if (target.rfind("#/", 0) == 0) *it = "#/$defs/" + def + target.substr(1);
      continue;
    }
    rebase_refs(*it, def);
  }
}

// The call object of the eligible tools (all, or the one named): a union over them of
// {"name": const, args_key: schema}, the arguments' schema the tool's parameters (when
// `all_schemas` or the tool is strict) or any object (no parameters, or a tool that is not
// strict). Parameters that are enforced but that structured output cannot compile are the
// request's mistake (400 naming the tool), not a silent "any object": the client asked for
// calls that follow them. args_key: "arguments" (hermes) or "parameters" (llama3_json).
std::shared_ptr<const JsonSchema> call_schema(const nlohmann::ordered_json& tools, const std::string& name,
                                              bool all_schemas, const char* args_key = "arguments") {
  nlohmann::json calls = nlohmann::json::array();
  nlohmann::json defs = nlohmann::json::object();  // the enforced parameters documents, by tool
  for (size_t i = 0; i < tools.size(); ++i) {
    const nlohmann::ordered_json& f = tools[i]["function"];
    const std::string n = f["name"].get<std::string>();
    if (!name.empty() && n != name) continue;
    nlohmann::json args = {{"type", "object"}};
    const auto p = f.find("parameters");
    if ((all_schemas || strict(f)) && p != f.end() && !(p->is_object() && p->empty())) {
      const std::string field = "tools[" + std::to_string(i) + "].function.parameters";
      nlohmann::json params(*p);
      try {
        // As its own document first: the errors are the ones guided_json gives for it.
        JsonSchema::compile(params);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument("'" + field + "' cannot be enforced on the call's arguments: " + e.what(), "tools");
      }
      const std::string def = "tool" + std::to_string(i);
      rebase_refs(params, def);
      defs[def] = std::move(params);
      args = {{"$ref", "#/$defs/" + def}};
    }
    // The name first, so that a streamed call can go out before its arguments are written.
    calls.push_back({{"type", "object"},
                     {"properties", {{"name", {{"const", n}}}, {args_key, std::move(args)}}},
                     {"required", {"name", args_key}},
                     {"propertyOrdering", {"name", args_key}},
                     {"additionalProperties", false}});
  }
  nlohmann::json call = calls.size() == 1 ? std::move(calls[0]) : nlohmann::json{{"anyOf", std::move(calls)}};
  if (!defs.empty()) call["$defs"] = std::move(defs);
  return JsonSchema::compile(call);
}

}  // namespace

std::vector<OutputPiece> forced_tool_call_format(const nlohmann::ordered_json& tools, const std::string& name,
                                                 ToolCallParser format) {
  if (format == ToolCallParser::Llama3Json) return {OutputPiece::value(call_schema(tools, name, true, "parameters"))};
  return {OutputPiece::text("<tool_call>\n"), OutputPiece::value(call_schema(tools, name, true)),
          OutputPiece::text("\n</tool_call>")};
}

bool has_strict_tool(const nlohmann::ordered_json& tools) {
  if (!tools.is_array()) return false;
  for (const nlohmann::ordered_json& t : tools)
    if (strict(t["function"])) return true;
  return false;
}

std::vector<OutputPiece> strict_tool_call_format(const nlohmann::ordered_json& tools) {
  return {OutputPiece::text_until(std::string(kToolCallOpen)), OutputPiece::text("\n"),
          OutputPiece::value(call_schema(tools, "", false)), OutputPiece::text("\n</tool_call>")};
}

std::vector<OutputPiece> format_or_tool_calls(std::vector<OutputPiece> format, const nlohmann::ordered_json& tools,
                                              ToolCallParser parser) {
  std::vector<OutputPiece> calls;
  if (parser == ToolCallParser::Llama3Json) {
    // A call, then ("; " call) zero or more times: the parser reads a next call only after "; ".
    const OutputPiece call = OutputPiece::value(call_schema(tools, "", false, "parameters"));
    calls = {call, OutputPiece::one_of_formats({{}, {OutputPiece::text("; "), call}}, /*repeat=*/true)};
  } else {
    calls = {OutputPiece::one_of_formats({{OutputPiece::text("<tool_call>\n"), OutputPiece::value(call_schema(tools, "", false)),
                                           OutputPiece::text("\n</tool_call>"), OutputPiece::any_of({"", "\n"})}},
                                         /*repeat=*/true)};
  }
  std::vector<std::vector<OutputPiece>> reply;
  reply.push_back(std::move(format));
  reply.push_back(std::move(calls));
  return {OutputPiece::one_of_formats(std::move(reply))};
}

namespace {

// One entry of "tool_calls": its index (streamed), then with the name (a whole call or a
// streamed call's first delta) its id and type, then the arguments (text or fragment).
void append_call(std::string& out, std::optional<int> index, const std::string* name, const std::string& arguments) {
  out.push_back('{');
  if (index) {
    out += "\"index\":";
    append_json_number(out, static_cast<int64_t>(*index));
    out.push_back(',');
  }
  if (name) {
    out += "\"id\":";
    append_json_string(out, make_request_id("chatcmpl-tool"));
    out += ",\"type\":\"function\",\"function\":{\"name\":";
    append_json_string(out, *name);
    out += ",\"arguments\":";
  } else {
    out += "\"function\":{\"arguments\":";
  }
  append_json_string(out, arguments);
  out += "}}";
}

}  // namespace

void append_tool_calls(std::string& out, const std::vector<ToolCall>& calls) {
  out += "\"tool_calls\":[";
  for (size_t i = 0; i < calls.size(); ++i) {
    if (i) out.push_back(',');
    append_call(out, std::nullopt, &calls[i].name, calls[i].arguments);
  }
  out.push_back(']');
}

void append_tool_call_deltas(std::string& out, const std::vector<ToolCallDelta>& deltas) {
  out += "\"tool_calls\":[";
  for (size_t i = 0; i < deltas.size(); ++i) {
    if (i) out.push_back(',');
    append_call(out, deltas[i].index, deltas[i].name ? &*deltas[i].name : nullptr, deltas[i].arguments);
  }
  out.push_back(']');
}

}  // namespace tllm
