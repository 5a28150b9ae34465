// Values of the Jinja interpreter, with Python semantics (chat templates are written against
// jinja2, which runs on Python objects): truthiness, ==, <, str() and repr() follow Python.
// Lists, dicts and namespaces are shared by reference, as in Python, so `ns.x = ...` and
// `list.append` are visible through every alias.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tllm::jinja {

class Value;
struct Dict;
struct Callable;
struct Args;

using List = std::vector<Value>;
using ListPtr = std::shared_ptr<List>;
using DictPtr = std::shared_ptr<Dict>;
using CallablePtr = std::shared_ptr<const Callable>;
using StrPtr = std::shared_ptr<const std::string>;

enum class Kind : uint8_t {
  Undefined,  // a missing variable/attribute: prints as "", falsy, errors on most use
  None,
  Bool,
  Int,
  Float,
  String,
  List,
  Tuple,  // an immutable list; prints as (a, b) and never equals a list
  Dict,
  Namespace,  // jinja2's namespace(): attributes assignable with {% set ns.x = ... %}
  Callable,
};

class Value {
 public:
  Value() : kind_(Kind::Undefined) {}
  static Value undefined(std::string hint = {});  // hint: why, for the error when it is used
  static Value none() { return Value(Kind::None); }
  Value(bool b) : kind_(Kind::Bool), data_(b) {}
  Value(int64_t i) : kind_(Kind::Int), data_(i) {}
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double f) : kind_(Kind::Float), data_(f) {}
  Value(std::string s) : kind_(Kind::String), data_(std::make_shared<const std::string>(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(std::string_view s) : Value(std::string(s)) {}
  static Value list(List items = {});
  static Value tuple(List items);
  static Value dict();
  static Value dict(DictPtr d);
  static Value namespace_(DictPtr d);
  static Value callable(CallablePtr c);

  // Frees nested lists and dicts without recursing once per level (see value.cpp).
  ~Value() {
    if (kind_ >= Kind::List && kind_ <= Kind::Namespace) release_container();
  }
  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  Value& operator=(const Value&) = default;
  Value& operator=(Value&&) noexcept = default;

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_tuple() const { return kind_ == Kind::Tuple; }
  bool is_sequence() const { return kind_ == Kind::List || kind_ == Kind::Tuple; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_namespace() const { return kind_ == Kind::Namespace; }
  bool is_callable() const { return kind_ == Kind::Callable; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_float() const { return std::get<double>(data_); }
  double to_double() const;  // Int/Float/Bool as a double
  const std::string& as_string() const { return *std::get<StrPtr>(data_); }
  const std::string& undefined_hint() const { return *std::get<StrPtr>(data_); }
  List& items() const { return *std::get<ListPtr>(data_); }  // List or Tuple
  const ListPtr& list_ptr() const { return std::get<ListPtr>(data_); }
  Dict& dict_ref() const { return *std::get<DictPtr>(data_); }  // Dict or Namespace
  const DictPtr& dict_ptr() const { return std::get<DictPtr>(data_); }
  const Callable& fn() const { return *std::get<CallablePtr>(data_); }

  // Python semantics.
  bool truthy() const;
  std::string str() const;   // str(x); Undefined -> ""
  std::string repr() const;  // repr(x), as lists and dicts print their items; [...] / {...} for a cycle
  const char* type_name() const;  // Python's type name: 'str', 'int', 'NoneType', 'dict', ...

 private:
  explicit Value(Kind k) : kind_(k) {}
  void release_container() noexcept;
  Kind kind_;
  std::variant<std::monostate, bool, int64_t, double, StrPtr, ListPtr, DictPtr, CallablePtr> data_;
};

// An insertion-ordered dict (Python 3.7+ dicts keep order; tojson relies on it).
// Lookup is linear: template dicts (messages, tool schemas) have a handful of keys.
struct Dict {
  std::vector<std::pair<Value, Value>> entries;

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
  bool erase(const Value& key);
  size_t size() const { return entries.size(); }
};

// Arguments of a call: positional, then keyword in the order written.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

struct Callable {
  std::string name;
  std::function<Value(Args&)> fn;
};

// Python ==, and <, which throws a TypeError-like message for unorderable types. Both throw
// TemplateFault "maximum recursion depth exceeded" for values nested over kMaxValueDepth
// (as Python raises RecursionError comparing two self-containing lists).
bool py_equal(const Value& a, const Value& b);
bool py_less(const Value& a, const Value& b);  // throws std::runtime_error on mixed types

// repr() of a Python float (shortest round-trip digits, '1e-05', '1e+16', '2.0').
std::string py_float_repr(double v);
// repr() of a Python str: quotes chosen as Python does, non-printables escaped.
std::string py_str_repr(std::string_view s);

}  // namespace tllm::jinja
