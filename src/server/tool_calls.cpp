#include "server/tool_calls.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/logging.h"
#include "engine/json_schema.h"
#include "server/json_text.h"
#include "server/serving.h"

namespace tllm {
namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";

}  // namespace

ParsedToolCalls parse_tool_calls(std::string_view text) {
  ParsedToolCalls out;
  size_t at = text.find(kOpen);
  if (at == std::string_view::npos) {
    out.content = std::string(text);
    return out;
  }
  out.content = std::string(text.substr(0, at));
  while (at != std::string_view::npos) {
    const size_t body = at + kOpen.size();
    const size_t close = text.find(kClose, body);
    const std::string_view block = text.substr(body, close == std::string_view::npos ? text.npos : close - body);
    const nlohmann::json call = nlohmann::json::parse(block, nullptr, /*allow_exceptions=*/false);
    if (!call.is_object() || !call.contains("name") || !call["name"].is_string()) return {std::string(text), {}};
    ToolCall tc;
    tc.name = call["name"].get<std::string>();
    const auto args = call.find("arguments");
    tc.arguments = args == call.end() || args->is_null() ? "{}"
                   : args->is_string()                   ? args->get<std::string>()
                                                         : args->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out.calls.push_back(std::move(tc));
    at = close == std::string_view::npos ? close : text.find(kOpen, close + kClose.size());
  }
  return out;
}

size_t text_before_tag(std::string_view text, std::string_view tag) {
  const size_t at = text.find(tag);
  if (at != std::string_view::npos) return at;
  // The longest suffix that is a proper prefix of the tag is held back.
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == tag.substr(0, n)) return text.size() - n;
  return text.size();
}

size_t tool_call_free_prefix(std::string_view text) { return text_before_tag(text, kOpen); }

namespace {

bool strict(const nlohmann::ordered_json& function) {
  auto it = function.find("strict");
  return it != function.end() && it->is_boolean() && it->get<bool>();
}

// The call object of the eligible tools (all, or the one named): a union over them of
// {"name": const, "arguments": schema}, the arguments' schema the tool's parameters (when
// `all_schemas` or the tool is strict) or any object (no parameters, keywords structured
// output cannot enforce, or a tool that is not strict).
std::shared_ptr<const JsonSchema> call_schema(const nlohmann::ordered_json& tools, const std::string& name,
                                              bool all_schemas) {
  nlohmann::json calls = nlohmann::json::array();
  for (const nlohmann::ordered_json& t : tools) {
    const nlohmann::ordered_json& f = t["function"];
    const std::string n = f["name"].get<std::string>();
    if (!name.empty() && n != name) continue;
    nlohmann::json args = {{"type", "object"}};
    if (auto p = f.find("parameters"); (all_schemas || strict(f)) && p != f.end() && p->is_object() && !p->empty()) {
      try {
        JsonSchema::compile(nlohmann::json(*p));
        args = nlohmann::json(*p);
      } catch (const InvalidArgument& e) {
        TLLM_LOG(Warn, "tool '", n, "': its arguments are constrained to a JSON object only: ", e.what());
      }
    }
    calls.push_back({{"type", "object"},
                     {"properties", {{"name", {{"const", n}}}, {"arguments", std::move(args)}}},
                     {"required", {"name", "arguments"}},
                     {"additionalProperties", false}});
  }
  return JsonSchema::compile(calls.size() == 1 ? calls[0] : nlohmann::json{{"anyOf", calls}});
}

}  // namespace

std::vector<OutputPiece> forced_tool_call_format(const nlohmann::ordered_json& tools, const std::string& name) {
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
  return {OutputPiece::text_until(std::string(kOpen)), OutputPiece::text("\n"),
          OutputPiece::value(call_schema(tools, "", false)), OutputPiece::text("\n</tool_call>")};
}

void append_tool_calls(std::string& out, const std::vector<ToolCall>& calls, bool indexed) {
  out += "\"tool_calls\":[";
  for (size_t i = 0; i < calls.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('{');
    if (indexed) {
      out += "\"index\":";
      append_json_number(out, static_cast<int64_t>(i));
      out.push_back(',');
    }
    out += "\"id\":";
    append_json_string(out, make_request_id("chatcmpl-tool"));
    out += ",\"type\":\"function\",\"function\":{\"name\":";
    append_json_string(out, calls[i].name);
    out += ",\"arguments\":";
    append_json_string(out, calls[i].arguments);
    out += "}}";
  }
  out.push_back(']');
}

}  // namespace tllm
