// JSON files from checkpoints (config.json, generation_config.json, safetensors headers and
// indexes) parsed strictly, with errors that name the file and the field.
//
// - parse_json rejects duplicate keys in any object (nlohmann would keep the last one
//   silently) and reports parse errors with the byte offset and the file.
// - JsonFields gives typed access to one object. A key whose value is null counts as absent
//   (HF configs write `"rope_scaling": null` for "not set"); a present value of the wrong
//   type is an error naming "<file>: field 'a.b' = <value>: <why>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tllm {

// Whole file as bytes; throws naming the path (and the OS error) when it cannot be read.
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);  // a regular file (or a link to one)
// Whether anything is at `path`, a broken link too: a file the caller reads when present, so
// that a broken one fails loudly (read_file names it) instead of being taken as absent.
bool path_present(const std::string& path);

// The deepest nesting of arrays and objects in JSON text (brackets inside strings do not
// count; the text need not be valid). Copies, comparisons and dumps of a parsed value recurse
// once per level, so inputs deeper than kMaxJsonDepth are refused before they are parsed.
int json_depth(std::string_view text);
inline constexpr int kMaxJsonDepth = 512;

// Parses `text`; `source` (usually the path) names it in errors. Duplicate keys are errors,
// and so is nesting deeper than kMaxJsonDepth.
nlohmann::json parse_json(std::string_view text, const std::string& source);
nlohmann::json read_json_file(const std::string& path);

// A nlohmann parse error's text with every byte outside ASCII written as \xNN: its "last
// read" excerpt quotes the input's bytes and can end inside a UTF-8 sequence, which would make
// the error message itself invalid UTF-8.
std::string json_error_text(const std::exception& e);

// Short, single-line rendering of a value for error messages (long values are cut).
std::string json_brief(const nlohmann::json& v);

class JsonFields {
 public:
  // `obj` must outlive this view. `prefix` is the path of `obj` inside the file ("" for the
  // root, "rope_scaling" for a nested object) and is prepended to field names in errors.
  JsonFields(const nlohmann::json& obj, std::string source, std::string prefix = "");

  const std::string& source() const { return source_; }
  const nlohmann::json& raw() const { return *obj_; }
  // Present and not null.
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // nullptr when the key is absent or null.
  const nlohmann::json* find(std::string_view key) const;
  // "rope_scaling.factor"
  std::string field(std::string_view key) const;

  std::optional<int64_t> get_int(std::string_view key) const;  // integral numbers only
  // Integer that must fit in [lo, hi]; the error names the range.
  std::optional<int> get_int_in(std::string_view key, int64_t lo, int64_t hi) const;
  std::optional<double> get_number(std::string_view key) const;  // ints and floats
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_list(std::string_view key) const;
  // An int or a list of ints (HF's eos_token_id); an int gives a one-element list.
  std::optional<std::vector<int64_t>> get_int_or_int_list(std::string_view key) const;
  std::optional<std::vector<std::string>> get_string_list(std::string_view key) const;
  std::optional<JsonFields> get_object(std::string_view key) const;

  // As above, but a missing (or null) key is an error saying the field is required.
  int64_t require_int(std::string_view key) const;
  int require_int_in(std::string_view key, int64_t lo, int64_t hi) const;
  std::string require_string(std::string_view key) const;

  // Throws InvalidArgument "<source>: field '<prefix.key>' = <value>: <what>" (the value part
  // is left out when the key is absent).
  [[noreturn]] void fail(std::string_view key, const std::string& what) const;

 private:
  const nlohmann::json* obj_;
  std::string source_;
  std::string prefix_;
};

}  // namespace tllm
