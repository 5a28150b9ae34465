// nlohmann::json as the reference for JSON mode's recognizer (engine/json_prefix.h): whether
// some continuation of s is a JSON text whose value is an object, with nothing before it. A
// parse that fails only at the end of s (the error's byte past it) leaves s a prefix. Shared by
// tests/engine/test_json_prefix.cpp and tests/server/test_json_mode.cpp.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace tllm::testing {

inline bool json_object_prefix(const std::string& s) {
  if (!s.empty() && s[0] != '{') return false;
  try {
    const nlohmann::json parsed = nlohmann::json::parse(s);
    return parsed.is_object();
  } catch (const nlohmann::json::parse_error& e) {
    return e.byte > s.size();
  }
}

}  // namespace tllm::testing
