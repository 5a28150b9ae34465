// Small helpers for reading tokenizer.json fields with errors that name the field.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

// Throws tllm::InvalidArgument: tokenizer files are user input.
#define TOK_FAIL(...) throw ::tllm::InvalidArgument(::tllm::detail::concat(__VA_ARGS__))

namespace tllm::tok {

using json = nlohmann::json;

inline const json& field(const json& obj, const char* key, std::string_view where) {
  auto it = obj.find(key);
  TLLM_CHECK_ARG(it != obj.end(), "tokenizer.json: ", where, " is missing field '", key, "'");
  return *it;
}

inline std::string get_string(const json& obj, const char* key, std::string_view where) {
  const json& v = field(obj, key, where);
  TLLM_CHECK_ARG(v.is_string(), "tokenizer.json: ", where, ".", key, " must be a string, got ",
                 v.type_name());
  return v.get<std::string>();
}

inline std::string get_string_or(const json& obj, const char* key, std::string fallback,
                                 std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  TLLM_CHECK_ARG(it->is_string(), "tokenizer.json: ", where, ".", key, " must be a string, got ",
                 it->type_name());
  return it->get<std::string>();
}

inline bool get_bool_or(const json& obj, const char* key, bool fallback, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  TLLM_CHECK_ARG(it->is_boolean(), "tokenizer.json: ", where, ".", key, " must be a boolean, got ",
                 it->type_name());
  return it->get<bool>();
}

inline int64_t get_int_or(const json& obj, const char* key, int64_t fallback, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  TLLM_CHECK_ARG(it->is_number_integer(), "tokenizer.json: ", where, ".", key,
                 " must be an integer, got ", it->type_name());
  return it->get<int64_t>();
}

inline std::string get_type(const json& obj, std::string_view where) {
  TLLM_CHECK_ARG(obj.is_object(), "tokenizer.json: ", where, " must be an object, got ",
                 obj.type_name());
  return get_string(obj, "type", where);
}

// Builds the items of a "Sequence" component: obj[key] must be an array; make(item, where)
// returns a component or nullptr (a null entry), which is skipped.
template <typename T, typename Make>
std::vector<std::unique_ptr<T>> make_list(const json& obj, const char* key, const std::string& where, Make make) {
  const json& list = field(obj, key, where);
  TLLM_CHECK_ARG(list.is_array(), "tokenizer.json: ", where, ".", key, " must be an array");
  std::vector<std::unique_ptr<T>> items;
  for (size_t i = 0; i < list.size(); ++i) {
    auto item = make(list[i], where + "." + key + "[" + std::to_string(i) + "]");
    if (item) items.push_back(std::move(item));
  }
  return items;
}

// Reads one code point from a JSON string field that must hold exactly one character.
char32_t get_char(const json& obj, const char* key, char32_t fallback, std::string_view where);

}  // namespace tllm::tok
