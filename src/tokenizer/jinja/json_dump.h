// Python's json.dumps on interpreter values, as transformers' `tojson` filter calls it:
// json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
// Key order is kept, non-ASCII stays raw unless ensure_ascii, floats print as Python's repr,
// separators default to (", ", ": ") or (",", ": ") when indenting.
#pragma once

#include <optional>
#include <string>

#include "tokenizer/jinja/value.h"

namespace tllm::jinja {

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // the indent unit; nullopt = one line
  std::optional<std::string> item_separator;
  std::optional<std::string> key_separator;
  bool sort_keys = false;
};

// Throws std::runtime_error "Object of type X is not JSON serializable" for Undefined,
// namespaces and callables, as Python does.
std::string json_dump(const Value& v, const JsonDumpOptions& opts = {});

// A JSON string literal with Python's escaping ("\u00e9" only when ensure_ascii).
std::string json_quote(std::string_view s, bool ensure_ascii);

}  // namespace tllm::jinja
