#include "server/request_fields.h"

#include <cmath>

#include "server/errors.h"
#include "server/json_text.h"

namespace tllm::request_fields {

const char* type_name(const RequestJson& v) {
  switch (v.type()) {
    case RequestJson::value_t::null: return "null";
    case RequestJson::value_t::boolean: return "a boolean";
    case RequestJson::value_t::string: return "a string";
    case RequestJson::value_t::array: return "an array";
    case RequestJson::value_t::object: return "an object";
    case RequestJson::value_t::number_float: return "a float";
    case RequestJson::value_t::number_integer:
    case RequestJson::value_t::number_unsigned: return "an integer";
    default: return "an unsupported value";
  }
}

const RequestJson* find(const RequestJson& body, const std::string& key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> get_number(const RequestJson& body, const std::string& key) {
  const RequestJson* v = find(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw bad_request("'" + key + "' must be a number, got " + type_name(*v), key);
  return v->get<double>();
}

std::optional<int64_t> get_integer(const RequestJson& body, const std::string& key, int64_t lo, int64_t hi) {
  const RequestJson* v = find(body, key);
  if (!v) return std::nullopt;
  int64_t x;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) throw bad_request("'" + key + "' is too large: " + v->dump(), key);
    x = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_float()) {
    // 10.0 is accepted as 10 (as pydantic does); 10.5 is not an integer.
    const double d = v->get<double>();
    if (std::floor(d) != d || std::fabs(d) > 9.0e15)
      throw bad_request("'" + key + "' must be an integer, got " + v->dump(), key);
    x = static_cast<int64_t>(d);
  } else {
    throw bad_request("'" + key + "' must be an integer, got " + type_name(*v), key);
  }
  if (x < lo || x > hi) throw bad_request("'" + key + "' is out of range: " + std::to_string(x), key);
  return x;
}

std::optional<int> get_int(const RequestJson& body, const std::string& key) {
  auto v = get_integer(body, key);
  if (!v) return std::nullopt;
  return static_cast<int>(*v);
}

std::optional<bool> get_bool(const RequestJson& body, const std::string& key) {
  const RequestJson* v = find(body, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw bad_request("'" + key + "' must be a boolean, got " + type_name(*v), key);
  return v->get<bool>();
}

std::optional<std::string> get_string(const RequestJson& body, const std::string& key) {
  const RequestJson* v = find(body, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw bad_request("'" + key + "' must be a string, got " + type_name(*v), key);
  return v->get<std::string>();
}

std::string fmt(double v) {
  std::string s;
  append_json_number(s, v);
  return s;
}

void check_range(const std::optional<double>& v, const std::string& key, double lo, bool lo_open,
                 double hi, const char* range) {
  if (!v) return;
  const bool ok = (lo_open ? *v > lo : *v >= lo) && *v <= hi;
  if (!ok) throw bad_request("'" + key + "' must be in " + range + ", got " + fmt(*v), key);
}

void reject_unsupported(const RequestJson& body, const std::string& key, const char* why) {
  const RequestJson* v = find(body, key);
  if (!v) return;
  if ((v->is_object() || v->is_array() || v->is_string()) && v->empty()) return;
  throw bad_request("'" + key + "' is not supported by this server" + std::string(why), key);
}

void check_known_fields(const RequestJson& body, const std::set<std::string>& known) {
  for (auto it = body.begin(); it != body.end(); ++it)
    if (!known.count(it.key()))
      throw bad_request("Unrecognized request argument supplied: " + it.key(), it.key());
}

std::string content_parts_text(const RequestJson& content, const std::string& path, const std::string& param,
                               std::initializer_list<TextPart> fields, const char* taken) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    throw bad_request("'" + path + "' must be a string or a list of content parts, got " + type_name(content), param);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const RequestJson& part = content[i];
    const std::string pp = path + "[" + std::to_string(i) + "]";
    const RequestJson* type = part.is_object() ? find(part, "type") : nullptr;
    if (!type || !type->is_string()) throw bad_request("'" + pp + "' must be an object with a 'type'", param);
    const std::string t = type->get<std::string>();
    const char* field = nullptr;
    for (const TextPart& f : fields)
      if (t == f.type) field = f.field;
    if (!field) throw bad_request("'" + pp + "': content part type '" + t + "' is not supported" + taken, param);
    const RequestJson* value = find(part, field);
    if (!value || !value->is_string()) throw bad_request("'" + pp + "." + field + "' must be a string", param);
    if (i) text += '\n';
    text += value->get<std::string>();
  }
  return text;
}

}  // namespace tllm::request_fields
