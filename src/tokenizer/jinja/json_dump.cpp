#include "tokenizer/jinja/json_dump.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/utf8.h"

namespace tllm::jinja {

std::string json_quote(std::string_view s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8::decode(s, i);
    char buf[16];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E && c != 0x7F)) {
          if (c >= 0x10000) {  // surrogate pair, as Python writes it
            char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                          static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
          } else {
            std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          }
          out += buf;
        } else {
          utf8::append(out, c);
        }
    }
  }
  out += '"';
  return out;
}

namespace {

std::string json_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
  return py_float_repr(v);
}

std::string json_key(const Value& k, bool ensure_ascii) {
  switch (k.kind()) {
    case Kind::String: return json_quote(k.as_string(), ensure_ascii);
    case Kind::Int: return "\"" + std::to_string(k.as_int()) + "\"";
    case Kind::Float: return "\"" + json_float(k.as_float()) + "\"";
    case Kind::Bool: return k.as_bool() ? "\"true\"" : "\"false\"";
    case Kind::None: return "\"null\"";
    default:
      throw std::runtime_error(std::string("keys must be str, int, float, bool or None, not ") + k.type_name());
  }
}

struct Dumper {
  const JsonDumpOptions& o;
  std::string item_sep, key_sep;
  std::string out;
  std::vector<const void*> active;  // containers being written: json.dumps' check_circular

  void newline(int level) {
    check_string_size(out.size() + 1 + static_cast<uint64_t>(level) * o.indent->size(), "tojson");
    out += '\n';
    for (int k = 0; k < level; ++k) out += *o.indent;
  }

  // Enters a list or dict: Python's "Circular reference detected" for one that contains itself,
  // and RecursionError's message for one nested too deep to write without overflowing the stack.
  void enter(const void* container) {
    if (std::find(active.begin(), active.end(), container) != active.end())
      throw TemplateFault("Circular reference detected");
    if (static_cast<int>(active.size()) >= kMaxValueDepth)
      throw TemplateFault("maximum recursion depth exceeded while encoding a JSON object (values nest more than " +
                          std::to_string(kMaxValueDepth) + " levels deep)");
    active.push_back(container);
  }

  void dump(const Value& v, int level) {
    check_string_size(out.size(), "tojson");
    switch (v.kind()) {
      case Kind::None: out += "null"; return;
      case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
      case Kind::Int: out += std::to_string(v.as_int()); return;
      case Kind::Float: out += json_float(v.as_float()); return;
      case Kind::String: out += json_quote(v.as_string(), o.ensure_ascii); return;
      case Kind::List:
      case Kind::Tuple: {
        const List& xs = v.items();
        if (xs.empty()) {
          out += "[]";
          return;
        }
        enter(&xs);
        out += '[';
        if (o.indent) newline(level + 1);
        for (size_t k = 0; k < xs.size(); ++k) {
          if (k) {
            out += item_sep;
            if (o.indent) newline(level + 1);
          }
          dump(xs[k], level + 1);
        }
        if (o.indent) newline(level);
        out += ']';
        active.pop_back();
        return;
      }
      case Kind::Dict: {
        const Dict& d = v.dict_ref();
        if (d.size() == 0) {
          out += "{}";
          return;
        }
        enter(&d);
        std::vector<const std::pair<Value, Value>*> entries;
        for (const auto& e : d.entries) entries.push_back(&e);
        if (o.sort_keys)
          std::stable_sort(entries.begin(), entries.end(),
                           [](auto* a, auto* b) { return py_less(a->first, b->first); });
        out += '{';
        if (o.indent) newline(level + 1);
        bool first = true;
        for (const auto* e : entries) {
          if (!first) {
            out += item_sep;
            if (o.indent) newline(level + 1);
          }
          first = false;
          out += json_key(e->first, o.ensure_ascii);
          out += key_sep;
          dump(e->second, level + 1);
        }
        if (o.indent) newline(level);
        out += '}';
        active.pop_back();
        return;
      }
      default:
        throw std::runtime_error(std::string("Object of type ") + v.type_name() + " is not JSON serializable");
    }
  }
};

}  // namespace

std::string json_dump(const Value& v, const JsonDumpOptions& opts) {
  Dumper d{opts, opts.item_separator.value_or(opts.indent ? "," : ", "), opts.key_separator.value_or(": "), {}, {}};
  d.dump(v, 0);
  return std::move(d.out);
}

}  // namespace tllm::jinja
