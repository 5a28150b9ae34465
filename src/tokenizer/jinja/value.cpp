#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/utf8.h"

namespace tllm::jinja {

void Value::release_container() noexcept {
  // Dropping the last reference to a list nested 100,000 deep (a template loop can build one)
  // would free it by recursion, one level per frame, and overflow the stack. Instead, a
  // container whose last reference goes away while another is being freed is queued, and the
  // outermost release frees the queue in a loop, so the recursion is never more than two deep.
  thread_local std::vector<std::shared_ptr<void>> pending;
  thread_local bool draining = false;
  std::shared_ptr<void> last;
  if (auto* l = std::get_if<ListPtr>(&data_)) {
    if (*l && l->use_count() == 1 && !(*l)->empty()) last = std::move(*l);
  } else if (auto* d = std::get_if<DictPtr>(&data_)) {
    if (*d && d->use_count() == 1 && (*d)->size() > 0) last = std::move(*d);
  }
  if (!last) return;
  if (draining) {
    try {
      pending.push_back(std::move(last));
    } catch (...) {
      // Out of memory for the queue: `last` frees by plain recursion instead.
    }
    return;
  }
  draining = true;
  last.reset();
  while (!pending.empty()) {
    std::shared_ptr<void> next = std::move(pending.back());
    pending.pop_back();
    next.reset();
  }
  draining = false;
}

Value Value::undefined(std::string hint) {
  Value v(Kind::Undefined);
  v.data_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::list(List items) {
  Value v(Kind::List);
  v.data_ = std::make_shared<List>(std::move(items));
  return v;
}

Value Value::tuple(List items) {
  Value v(Kind::Tuple);
  v.data_ = std::make_shared<List>(std::move(items));
  return v;
}

Value Value::dict() { return dict(std::make_shared<Dict>()); }

Value Value::dict(DictPtr d) {
  Value v(Kind::Dict);
  v.data_ = std::move(d);
  return v;
}

Value Value::namespace_(DictPtr d) {
  Value v(Kind::Namespace);
  v.data_ = std::move(d);
  return v;
}

Value Value::callable(CallablePtr c) {
  Value v(Kind::Callable);
  v.data_ = std::move(c);
  return v;
}

double Value::to_double() const {
  switch (kind_) {
    case Kind::Int: return static_cast<double>(as_int());
    case Kind::Float: return as_float();
    case Kind::Bool: return as_bool() ? 1.0 : 0.0;
    default: throw std::runtime_error(std::string("expected a number, got ") + type_name());
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return as_bool();
    case Kind::Int: return as_int() != 0;
    case Kind::Float: return as_float() != 0.0;
    case Kind::String: return !as_string().empty();
    case Kind::List:
    case Kind::Tuple: return !items().empty();
    case Kind::Dict: return dict_ref().size() > 0;
    case Kind::Namespace:
    case Kind::Callable: return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Callable: return "function";
  }
  return "object";
}

std::string py_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  // Shortest round-trip digits in scientific form, then Python's layout: positional when the
  // decimal exponent is in [-4, 16), else d.ddde+XX.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  std::string mant = sci.substr(0, epos);
  int exp10 = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = neg ? "-" : "";
  if (exp10 >= -4 && exp10 < 16) {
    int decpt = exp10 + 1;
    int n = static_cast<int>(digits.size());
    if (decpt <= 0) {
      out += "0." + std::string(-decpt, '0') + digits;
    } else if (decpt >= n) {
      out += digits + std::string(decpt - n, '0') + ".0";
    } else {
      out += digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    out += e;
  }
  return out;
}

std::string py_str_repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8::decode(s, i);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!utf8::is_printable(c)) {
      char buf[16];
      if (c < 0x100)
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000)
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      else
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    } else {
      utf8::append(out, c);
    }
  }
  out += quote;
  return out;
}

std::string Value::str() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::String: return as_string();
    default: return repr();
  }
}

namespace {

[[noreturn]] void too_deep(const char* doing) {
  throw TemplateFault(std::string("maximum recursion depth exceeded ") + doing + " (values nest more than " +
                      std::to_string(kMaxValueDepth) + " levels deep)");
}

// repr with Python's guard against cycles (Py_ReprEnter): a list or dict already being printed
// further up prints as [...] / {...}. `active` holds the containers being printed.
void repr_into(const Value& v, std::string& out, std::vector<const void*>& active) {
  switch (v.kind()) {
    case Kind::List:
    case Kind::Tuple: {
      bool tup = v.kind() == Kind::Tuple;
      const List& xs = v.items();
      if (std::find(active.begin(), active.end(), &xs) != active.end()) {
        out += tup ? "(...)" : "[...]";
        return;
      }
      if (static_cast<int>(active.size()) >= kMaxValueDepth) too_deep("while getting the repr of an object");
      active.push_back(&xs);
      out += tup ? "(" : "[";
      for (size_t k = 0; k < xs.size(); ++k) {
        if (k) out += ", ";
        repr_into(xs[k], out, active);
        check_string_size(out.size(), "repr");
      }
      if (tup && xs.size() == 1) out += ",";
      out += tup ? ")" : "]";
      active.pop_back();
      return;
    }
    case Kind::Dict:
    case Kind::Namespace: {
      const Dict& d = v.dict_ref();
      const bool ns = v.kind() == Kind::Namespace;
      if (ns) out += "<Namespace ";
      if (std::find(active.begin(), active.end(), &d) != active.end()) {
        out += "{...}";
      } else {
        if (static_cast<int>(active.size()) >= kMaxValueDepth) too_deep("while getting the repr of an object");
        active.push_back(&d);
        out += "{";
        bool first = true;
        for (const auto& [k, x] : d.entries) {
          if (!first) out += ", ";
          first = false;
          repr_into(k, out, active);
          out += ": ";
          repr_into(x, out, active);
          check_string_size(out.size(), "repr");
        }
        out += "}";
        active.pop_back();
      }
      if (ns) out += ">";
      return;
    }
    default: out += v.repr();
  }
}

}  // namespace

std::string Value::repr() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return as_bool() ? "True" : "False";
    case Kind::Int: return std::to_string(as_int());
    case Kind::Float: return py_float_repr(as_float());
    case Kind::String: return py_str_repr(as_string());
    case Kind::List:
    case Kind::Tuple:
    case Kind::Dict:
    case Kind::Namespace: {
      std::string out;
      std::vector<const void*> active;
      repr_into(*this, out, active);
      return out;
    }
    case Kind::Callable: return "<function " + fn().name + ">";
  }
  return "";
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& e : entries)
    if (py_equal(e.first, key)) return &e.second;
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& e : entries)
    if (e.first.is_string() && e.first.as_string() == key) return &e.second;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& e : entries) {
    if (py_equal(e.first, key)) {
      e.second = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

bool Dict::erase(const Value& key) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (py_equal(it->first, key)) {
      entries.erase(it);
      return true;
    }
  }
  return false;
}

namespace {

bool equal_at(const Value& a, const Value& b, int depth) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
    int64_t x = a.is_bool() ? a.as_bool() : a.as_int();
    int64_t y = b.is_bool() ? b.as_bool() : b.as_int();
    return x == y;
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.as_string() == b.as_string();
    case Kind::List:
    case Kind::Tuple: {
      const List& x = a.items();
      const List& y = b.items();
      if (&x == &y) return true;  // Python compares items by identity first: a == a holds even if a contains a
      if (x.size() != y.size()) return false;
      if (depth >= kMaxValueDepth) too_deep("in comparison");
      for (size_t k = 0; k < x.size(); ++k)
        if (!equal_at(x[k], y[k], depth + 1)) return false;
      return true;
    }
    case Kind::Dict: {
      const Dict& x = a.dict_ref();
      const Dict& y = b.dict_ref();
      if (&x == &y) return true;
      if (x.size() != y.size()) return false;
      if (depth >= kMaxValueDepth) too_deep("in comparison");
      for (const auto& [k, v] : x.entries) {
        // Dict::find, with the depth carried on: keys may be containers too.
        const Value* w = nullptr;
        if (k.is_string()) {
          w = y.find(std::string_view(k.as_string()));
        } else {
          for (const auto& e : y.entries)
            if (equal_at(e.first, k, depth + 1)) {
              w = &e.second;
              break;
            }
        }
        if (!w || !equal_at(v, *w, depth + 1)) return false;
      }
      return true;
    }
    case Kind::Namespace: return a.dict_ptr() == b.dict_ptr();
    case Kind::Callable: return &a.fn() == &b.fn();
    default: return false;
  }
}

bool less_at(const Value& a, const Value& b, int depth) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() < b.to_double();
    int64_t x = a.is_bool() ? a.as_bool() : a.as_int();
    int64_t y = b.is_bool() ? b.as_bool() : b.as_int();
    return x < y;
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 keeps code point order
  if (a.kind() == b.kind() && a.is_sequence()) {
    const List& x = a.items();
    const List& y = b.items();
    if (depth >= kMaxValueDepth) too_deep("in comparison");
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (equal_at(x[k], y[k], depth + 1)) continue;
      return less_at(x[k], y[k], depth + 1);
    }
    return x.size() < y.size();
  }
  throw std::runtime_error(std::string("'<' not supported between instances of '") + a.type_name() +
                           "' and '" + b.type_name() + "'");
}

}  // namespace

bool py_equal(const Value& a, const Value& b) { return equal_at(a, b, 0); }

bool py_less(const Value& a, const Value& b) { return less_at(a, b, 0); }

}  // namespace tllm::jinja
