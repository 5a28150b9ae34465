// A JSON Schema validator for the subset structured output enforces (engine/json_schema.h),
// written from the JSON Schema text independently of the recognizer: it checks a whole parsed
// value where the recognizer follows bytes. The test-side reference for
// tests/engine/test_json_schema.cpp and the server's json_schema tests. Same reading of the
// schema as the compiler: no "type" takes the type the keywords imply, "properties" without
// "additionalProperties" allows no other keys, oneOf is anyOf, lengths count code points.
#pragma once

#include <algorithm>
#include <cmath>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

namespace tllm::testing {

class SchemaOracle {
 public:
  explicit SchemaOracle(nlohmann::json root) : root_(std::move(root)) {}
  bool valid(const nlohmann::json& v) const { return check(root_, v); }

 private:
  static size_t code_points(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  }
  static bool has_type(const nlohmann::json& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "number") return v.is_number();
    // Any number without a fraction (nlohmann reads integers beyond 64 bits as doubles).
    if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    return false;
  }

  bool check(const nlohmann::json& s, const nlohmann::json& v) const {
    if (s.is_boolean()) return s.get<bool>();
    if (s.contains("$ref")) {
      const std::string r = s["$ref"];
      return check(r == "#" ? root_ : root_.at(nlohmann::json::json_pointer(r.substr(1))), v);
    }
    if (s.contains("allOf")) return check(s["allOf"][0], v);
    for (const char* key : {"anyOf", "oneOf"})
      if (s.contains(key)) {
        for (const auto& alt : s[key])
          if (check(alt, v)) return true;
        return false;
      }
    if (s.contains("const") && v != s["const"]) return false;
    if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) return false;
    std::vector<std::string> types;
    if (s.contains("type")) {
      if (s["type"].is_string()) types.push_back(s["type"]);
      else for (const auto& t : s["type"]) types.push_back(t);
      if (s.value("nullable", false)) types.push_back("null");
    } else {
      if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) types.push_back("object");
      if (s.contains("items") || s.contains("prefixItems") || s.contains("minItems") || s.contains("maxItems")) types.push_back("array");
      if (s.contains("minLength") || s.contains("maxLength") || s.contains("pattern")) types.push_back("string");
    }
    if (!types.empty() && std::none_of(types.begin(), types.end(), [&](const std::string& t) { return has_type(v, t); }))
      return false;
    if (v.is_number()) {
      const double x = v.get<double>();
      const auto num = [&](const char* k) { return s.contains(k) && s[k].is_number(); };
      if (num("minimum") && x < s["minimum"].get<double>()) return false;
      if (num("maximum") && x > s["maximum"].get<double>()) return false;
      if (num("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) return false;
      if (num("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) return false;
    }
    if (v.is_string()) {
      const size_t n = code_points(v.get<std::string>());
      if (n < s.value("minLength", size_t{0}) || n > s.value("maxLength", size_t(-1))) return false;
      // pattern: an ECMAScript search (std::regex reads bytes: ASCII patterns only here).
      if (s.contains("pattern") && !std::regex_search(v.get<std::string>(), std::regex(s["pattern"].get<std::string>())))
        return false;
    }
    if (v.is_array()) {
      if (v.size() < s.value("minItems", size_t{0}) || v.size() > s.value("maxItems", size_t(-1))) return false;
      const nlohmann::json prefix = s.value("prefixItems", nlohmann::json::array());
      for (size_t i = 0; i < v.size(); ++i) {
        if (i < prefix.size()) {
          if (!check(prefix[i], v[i])) return false;
        } else if (s.contains("items") && !check(s["items"], v[i])) {
          return false;
        }
      }
    }
    if (v.is_object()) {
      const nlohmann::json props = s.value("properties", nlohmann::json::object());
      for (const auto& r : s.value("required", nlohmann::json::array()))
        if (!v.contains(r.get<std::string>())) return false;
      const nlohmann::json extra = s.contains("additionalProperties") ? s["additionalProperties"]
                                   : s.contains("properties")        ? nlohmann::json(false)
                                                                     : nlohmann::json(true);
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (props.contains(it.key())) {
          if (!check(props[it.key()], it.value())) return false;
        } else if (!check(extra, it.value())) {
          return false;
        }
      }
    }
    return true;
  }

  nlohmann::json root_;
};

}  // namespace tllm::testing
