// Registries of the builtins a template can reach: filters (filters.cpp), tests (tests.cpp),
// methods of str/dict/list values (methods.cpp) and global functions (globals.cpp).
// Semantics follow jinja2 3.1's builtins and Python's str/dict/list methods.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/value.h"

namespace tllm::jinja {

using FilterFn = Value (*)(Interpreter&, const Value& input, Args& args);
using TestFn = bool (*)(Interpreter&, const Value& input, Args& args);

FilterFn find_filter(const std::string& name);  // nullptr when unknown
TestFn find_test(const std::string& name);      // nullptr when unknown

// obj.name as a Python method bound to obj (str, dict, list methods); Undefined when none.
Value bound_method(const Value& obj, const std::string& name);

// obj[start:stop:step] for lists, tuples and strings (by code point), Python's clamping rules.
Value slice_value(const Value& obj, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step);

// range, dict, namespace, raise_exception, strftime_now, joiner, cycler.
void install_globals(Scope& scope, const RenderOptions& opts);

// Binds call arguments to a Python-like signature: positional in order, then keywords by name.
class ArgReader {
 public:
  ArgReader(const Args& args, std::string_view fn, std::initializer_list<std::string_view> names);
  const Value* get(size_t i) const { return vals_[i]; }
  bool has(size_t i) const { return vals_[i] != nullptr; }
  Value value_or(size_t i, Value dflt) const { return vals_[i] ? *vals_[i] : std::move(dflt); }

 private:
  std::vector<const Value*> vals_;
};

// Shared helpers.
int64_t to_int_arg(const Value& v, std::string_view what);  // int or bool, else TemplateFault
std::string python_title(std::string_view s);                // str.title()
std::string python_capitalize(std::string_view s);           // str.capitalize()
std::string python_strip(std::string_view s, const Value* chars, bool left, bool right);
// snprintf into a string sized from its return value (no fixed buffer to cut the result at);
// TemplateFault when snprintf fails (a width beyond INT_MAX).
std::string c_format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// The width or precision of a format spec (% formatting and str.format) at s[i], advancing i.
// Capped at the result-size cap: a larger one could only build an absurd string, and beyond
// INT_MAX snprintf fails outright.
size_t spec_number(std::string_view s, size_t& i);

}  // namespace tllm::jinja
