// Python methods on template values: str (split, strip, startswith, format, ...),
// dict (get, items, keys, ...) and list (append, pop, index, ...), plus slicing.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <unordered_map>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/utf8.h"

namespace tllm::jinja {

ArgReader::ArgReader(const Args& args, std::string_view fn, std::initializer_list<std::string_view> names)
    : vals_(names.size(), nullptr) {
  if (args.pos.size() > names.size())
    throw TemplateFault(std::string(fn) + "() takes at most " + std::to_string(names.size()) + " argument(s) (" +
                        std::to_string(args.pos.size()) + " given)");
  for (size_t k = 0; k < args.pos.size(); ++k) vals_[k] = &args.pos[k];
  for (const auto& [key, v] : args.kw) {
    size_t k = 0;
    for (auto n : names) {
      if (n == key) break;
      ++k;
    }
    if (k == names.size())
      throw TemplateFault(std::string(fn) + "() got an unexpected keyword argument '" + key + "'");
    if (vals_[k]) throw TemplateFault(std::string(fn) + "() got multiple values for argument '" + key + "'");
    vals_[k] = &v;
  }
}

std::string c_format(const char* fmt, ...) {
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    va_end(again);
    throw TemplateFault("format result is too large");
  }
  std::string out(static_cast<size_t>(n), '\0');
  std::vsnprintf(out.data(), out.size() + 1, fmt, again);
  va_end(again);
  return out;
}

int64_t to_int_arg(const Value& v, std::string_view what) {
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool();
  throw TemplateFault(std::string(what) + ": an integer is required, got '" + v.type_name() + "'");
}

namespace {

const std::string& str_arg(const Value* v, std::string_view what) {
  if (!v || !v->is_string())
    throw TemplateFault(std::string(what) + " requires a string argument, got '" + (v ? v->type_name() : "nothing") +
                        "'");
  return v->as_string();
}

using Method = Value (*)(const Value& self, Args& args);

// Python's str.split()/rsplit() with sep=None: runs of whitespace, no empty strings.
List split_whitespace(const std::string& s, int64_t maxsplit, bool from_right) {
  std::vector<char32_t> cps = utf8::to_code_points(s);
  List out;
  if (!from_right) {
    size_t i = 0, n = cps.size();
    while (true) {
      while (i < n && utf8::is_space(cps[i])) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        out.emplace_back(utf8::from_code_points(cps, i, n));
        break;
      }
      size_t j = i;
      while (j < n && !utf8::is_space(cps[j])) ++j;
      out.emplace_back(utf8::from_code_points(cps, i, j));
      i = j;
    }
    return out;
  }
  int64_t i = static_cast<int64_t>(cps.size()) - 1;
  while (true) {
    while (i >= 0 && utf8::is_space(cps[i])) --i;
    if (i < 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.emplace_back(utf8::from_code_points(cps, 0, static_cast<size_t>(i + 1)));
      break;
    }
    int64_t j = i;
    while (j >= 0 && !utf8::is_space(cps[j])) --j;
    out.emplace_back(utf8::from_code_points(cps, static_cast<size_t>(j + 1), static_cast<size_t>(i + 1)));
    i = j;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

List split_sep(const std::string& s, const std::string& sep, int64_t maxsplit, bool from_right) {
  if (sep.empty()) throw TemplateFault("empty separator");
  List out;
  if (!from_right) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      size_t p = s.find(sep, start);
      if (p == std::string::npos) break;
      out.emplace_back(s.substr(start, p - start));
      start = p + sep.size();
    }
    out.emplace_back(s.substr(start));
    return out;
  }
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep.size()) break;
    size_t p = s.rfind(sep, end - sep.size());
    if (p == std::string::npos) break;
    out.emplace_back(s.substr(p + sep.size(), end - p - sep.size()));
    end = p;
  }
  out.emplace_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

Value str_split_impl(const Value& self, Args& args, bool from_right) {
  ArgReader a(args, from_right ? "rsplit" : "split", {"sep", "maxsplit"});
  int64_t maxsplit = a.has(1) ? to_int_arg(*a.get(1), "maxsplit") : -1;
  const std::string& s = self.as_string();
  if (!a.has(0) || a.get(0)->is_none()) return Value::list(split_whitespace(s, maxsplit, from_right));
  return Value::list(split_sep(s, str_arg(a.get(0), "split"), maxsplit, from_right));
}

bool affix_match(const Value& self, Args& args, bool prefix) {
  ArgReader a(args, prefix ? "startswith" : "endswith", {"prefix", "start", "end"});
  if (!a.has(0)) throw TemplateFault("startswith/endswith takes at least 1 argument");
  std::string s = self.as_string();
  if (a.has(1) || a.has(2)) {
    Value sliced = slice_value(self, a.has(1) && !a.get(1)->is_none() ? std::optional(to_int_arg(*a.get(1), "start")) : std::nullopt,
                               a.has(2) && !a.get(2)->is_none() ? std::optional(to_int_arg(*a.get(2), "end")) : std::nullopt,
                               std::nullopt);
    s = sliced.as_string();
  }
  List candidates = a.get(0)->is_tuple() ? a.get(0)->items() : List{*a.get(0)};
  for (const auto& c : candidates) {
    const std::string& x = str_arg(&c, prefix ? "startswith" : "endswith");
    if (x.size() > s.size()) continue;
    if (prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0) return true;
  }
  return false;
}

int64_t find_impl(const Value& self, Args& args, const char* name, bool from_right) {
  ArgReader a(args, name, {"sub", "start", "end"});
  const std::string& s = self.as_string();
  const std::string& sub = str_arg(a.get(0), name);
  size_t lo = 0, hi = s.size();
  if (a.has(1) || a.has(2)) {
    int64_t n = static_cast<int64_t>(utf8::length(s));
    auto clamp = [n](int64_t i) { return i < 0 ? std::max<int64_t>(0, i + n) : std::min(i, n); };
    if (a.has(1) && !a.get(1)->is_none()) lo = utf8::byte_offset(s, clamp(to_int_arg(*a.get(1), "start")));
    if (a.has(2) && !a.get(2)->is_none()) hi = utf8::byte_offset(s, clamp(to_int_arg(*a.get(2), "end")));
  }
  if (hi < lo || hi - lo < sub.size()) return -1;
  std::string_view window(s.data() + lo, hi - lo);
  size_t p = from_right ? window.rfind(sub) : window.find(sub);
  if (p == std::string_view::npos) return -1;
  return static_cast<int64_t>(utf8::cp_index(s, lo + p));
}

// Python's str.format: {} {0} {name} {name.attr} {0[key]}, !r/!s, and a format spec subset
// ([[fill]align][sign][0][width][,][.precision][type], types s d f F e E g G % x o b).
std::string format_spec(const Value& v, const std::string& spec) {
  size_t i = 0;
  char fill = ' ', align = 0, sign = '-';
  if (spec.size() >= 2 && std::string_view("<>^=").find(spec[1]) != std::string_view::npos) {
    fill = spec[0];
    align = spec[1];
    i = 2;
  } else if (!spec.empty() && std::string_view("<>^=").find(spec[0]) != std::string_view::npos) {
    align = spec[0];
    i = 1;
  }
  if (i < spec.size() && std::string_view("+- ").find(spec[i]) != std::string_view::npos) sign = spec[i++];
  if (i < spec.size() && spec[i] == '0') {
    if (!align) {
      fill = '0';
      align = '=';
    }
    ++i;
  }
  // Width and precision are capped at the result-size cap (Python: "Too many decimal digits in
  // format string" past sys.maxsize, MemoryError below it), so they cannot overflow or exhaust memory.
  size_t width = spec_number(spec, i);
  bool comma = false;
  if (i < spec.size() && spec[i] == ',') {
    comma = true;
    ++i;
  }
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    precision = static_cast<int>(spec_number(spec, i));
  }
  char type = i < spec.size() ? spec[i++] : 0;
  if (i != spec.size()) throw TemplateFault("invalid format specifier '" + spec + "'");
  std::string body;
  bool numeric = v.is_number();
  if (!type) {
    if (v.is_float() && precision >= 0) type = 'g';
    else if (numeric && !v.is_float() && precision < 0) type = 'd';
  }
  if (!type || type == 's') {
    if (type == 's' && numeric) throw TemplateFault("Unknown format code 's' for object of type '" + std::string(v.type_name()) + "'");
    body = v.str();
    if (precision >= 0 && !numeric) body = body.substr(0, utf8::byte_offset(body, static_cast<size_t>(precision)));
    if (!align) align = numeric ? '>' : '<';
  } else {
    if (!numeric) throw TemplateFault(std::string("Unknown format code '") + type + "' for object of type '" + v.type_name() + "'");
    if (!align) align = '>';
    double d = v.to_double();
    bool neg = false;
    switch (type) {
      case 'd': {
        if (v.is_float()) throw TemplateFault("Unknown format code 'd' for object of type 'float'");
        int64_t n = v.is_bool() ? v.as_bool() : v.as_int();
        neg = n < 0;
        // The magnitude in uint64_t: negating INT64_MIN as an int64_t is undefined behaviour.
        body = std::to_string(neg ? uint64_t{0} - static_cast<uint64_t>(n) : static_cast<uint64_t>(n));
        if (comma) {
          std::string grouped;
          for (size_t k = 0; k < body.size(); ++k) {
            if (k && (body.size() - k) % 3 == 0) grouped += ',';
            grouped += body[k];
          }
          body = grouped;
        }
        break;
      }
      case 'x':
      case 'o':
      case 'b': {
        int64_t n = to_int_arg(v, "format");
        neg = n < 0;
        uint64_t u = neg ? uint64_t{0} - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
        int base = type == 'x' ? 16 : type == 'o' ? 8 : 2;
        do {
          body.insert(body.begin(), "0123456789abcdef"[u % base]);
          u /= base;
        } while (u);
        break;
      }
      case '%':
        neg = d < 0;
        body = c_format("%.*f%%", precision < 0 ? 6 : precision, std::fabs(d) * 100);
        break;
      default: {
        if (std::string_view("fFeEgG").find(type) == std::string_view::npos)
          throw TemplateFault(std::string("Unknown format code '") + type + "'");
        neg = std::signbit(d);
        const char f[] = {'%', '.', '*', type, '\0'};
        body = c_format(f, precision < 0 ? 6 : precision, std::fabs(d));
      }
    }
    if (neg) body = "-" + body;
    else if (sign == '+') body = "+" + body;
    else if (sign == ' ') body = " " + body;
  }
  size_t len = utf8::length(body);
  if (len >= width) return body;
  size_t pad = width - len;
  switch (align) {
    case '<': return body + std::string(pad, fill);
    case '^': return std::string(pad / 2, fill) + body + std::string(pad - pad / 2, fill);
    case '=': {
      size_t signlen = (!body.empty() && std::string_view("+- ").find(body[0]) != std::string_view::npos) ? 1 : 0;
      return body.substr(0, signlen) + std::string(pad, fill) + body.substr(signlen);
    }
    default: return std::string(pad, fill) + body;
  }
}

// A field number of str.format ("{12}", "{0[3]}"), all digits. Python parses it into a
// Py_ssize_t and fails beyond that.
size_t field_number(const std::string& digits) {
  uint64_t n = 0;
  for (char d : digits) {
    if (n > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - 9) / 10)
      throw TemplateFault("Too many decimal digits in format string");
    n = n * 10 + static_cast<uint64_t>(d - '0');
  }
  return static_cast<size_t>(n);
}

Value str_format(const Value& self, Args& args) {
  const std::string& fmt = self.as_string();
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      throw TemplateFault("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw TemplateFault("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string spec, conv;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      conv = field.substr(bang + 1);
      field.resize(bang);
    }
    size_t head_end = field.find_first_of(".[");
    std::string head = field.substr(0, head_end);
    Value v;
    if (head.empty()) {
      if (auto_index >= args.pos.size()) throw TemplateFault("Replacement index " + std::to_string(auto_index) + " out of range for positional args tuple");
      v = args.pos[auto_index++];
    } else if (std::all_of(head.begin(), head.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
      size_t k = field_number(head);
      if (k >= args.pos.size()) throw TemplateFault("Replacement index " + head + " out of range for positional args tuple");
      v = args.pos[k];
    } else {
      auto it = std::find_if(args.kw.begin(), args.kw.end(), [&](const auto& kv) { return kv.first == head; });
      if (it == args.kw.end()) throw TemplateFault("KeyError: '" + head + "'");
      v = it->second;
    }
    // .attr and [key] accessors
    for (size_t p = head_end; p != std::string::npos && p < field.size();) {
      if (field[p] == '.') {
        size_t q = field.find_first_of(".[", p + 1);
        std::string name = field.substr(p + 1, q == std::string::npos ? std::string::npos : q - p - 1);
        const Value* x = v.is_dict() || v.is_namespace() ? v.dict_ref().find(std::string_view(name)) : nullptr;
        if (!x) throw TemplateFault("'" + std::string(v.type_name()) + "' object has no attribute '" + name + "'");
        v = *x;
        p = q;
      } else {
        size_t q = field.find(']', p);
        if (q == std::string::npos) throw TemplateFault("Missing ']' in format string");
        std::string key = field.substr(p + 1, q - p - 1);
        bool numeric = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); });
        if (v.is_sequence() && numeric) {
          size_t k = field_number(key);
          if (k >= v.items().size()) throw TemplateFault("list index out of range");
          v = v.items()[k];
        } else if (v.is_dict()) {
          const Value* x = numeric ? v.dict_ref().find(Value(static_cast<int64_t>(field_number(key))))
                                   : v.dict_ref().find(std::string_view(key));
          if (!x) throw TemplateFault("KeyError: '" + key + "'");
          v = *x;
        } else {
          throw TemplateFault("'" + std::string(v.type_name()) + "' object is not subscriptable");
        }
        p = q + 1;
      }
    }
    if (conv == "r") v = Value(v.repr());
    else if (conv == "s") v = Value(v.str());
    else if (!conv.empty()) throw TemplateFault("Unknown conversion specifier " + conv);
    out += format_spec(v, spec);
    check_string_size(out.size(), "format");
  }
  return Value(std::move(out));
}

template <bool (*Pred)(char32_t)>
Value all_chars(const Value& self, Args& args) {
  ArgReader a(args, "is*", {});
  const std::string& s = self.as_string();
  if (s.empty()) return Value(false);
  for (size_t i = 0; i < s.size();)
    if (!Pred(utf8::decode(s, i))) return Value(false);
  return Value(true);
}

// islower/isupper: at least one cased character and no cased character of the other case.
template <bool Upper>
Value case_check(const Value& self, Args& args) {
  ArgReader a(args, Upper ? "isupper" : "islower", {});
  const std::string& s = self.as_string();
  bool cased = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8::decode(s, i);
    if (Upper ? utf8::is_lower(c) : utf8::is_upper(c)) return Value(false);
    if (Upper ? utf8::is_upper(c) : utf8::is_lower(c)) cased = true;
  }
  return Value(cased);
}

Value pad(const Value& self, Args& args, const char* name, char how) {
  ArgReader a(args, name, {"width", "fillchar"});
  int64_t width = to_int_arg(a.value_or(0, Value(0)), name);
  std::string fill = a.has(1) ? str_arg(a.get(1), name) : " ";
  const std::string& s = self.as_string();
  int64_t len = static_cast<int64_t>(utf8::length(s));
  if (width <= len) return self;
  int64_t total = width - len;
  check_string_size(static_cast<uint64_t>(total) * fill.size() + s.size(), name);
  auto rep = [&](int64_t n) {
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += fill;
    return out;
  };
  if (how == '<') return Value(s + rep(total));
  if (how == '>') return Value(rep(total) + s);
  int64_t left = total / 2 + (total & width & 1);  // CPython's centering rule
  return Value(rep(left) + s + rep(total - left));
}

const std::unordered_map<std::string, Method>& str_methods() {
  static const std::unordered_map<std::string, Method> m = {
      {"upper", [](const Value& s, Args& a) { ArgReader(a, "upper", {}); return Value(utf8::upper(s.as_string())); }},
      {"lower", [](const Value& s, Args& a) { ArgReader(a, "lower", {}); return Value(utf8::lower(s.as_string())); }},
      {"casefold", [](const Value& s, Args& a) { ArgReader(a, "casefold", {}); return Value(utf8::lower(s.as_string())); }},
      {"swapcase", [](const Value& s, Args& a) {
         ArgReader(a, "swapcase", {});
         std::string out;
         const std::string& x = s.as_string();
         for (size_t i = 0; i < x.size();) {
           char32_t c = utf8::decode(x, i);
           utf8::append(out, utf8::is_upper(c) ? utf8::to_lower(c) : utf8::is_lower(c) ? utf8::to_upper(c) : c);
         }
         return Value(std::move(out));
       }},
      {"title", [](const Value& s, Args& a) { ArgReader(a, "title", {}); return Value(python_title(s.as_string())); }},
      {"capitalize", [](const Value& s, Args& a) { ArgReader(a, "capitalize", {}); return Value(python_capitalize(s.as_string())); }},
      {"strip", [](const Value& s, Args& a) { ArgReader r(a, "strip", {"chars"}); return Value(python_strip(s.as_string(), r.get(0), true, true)); }},
      {"lstrip", [](const Value& s, Args& a) { ArgReader r(a, "lstrip", {"chars"}); return Value(python_strip(s.as_string(), r.get(0), true, false)); }},
      {"rstrip", [](const Value& s, Args& a) { ArgReader r(a, "rstrip", {"chars"}); return Value(python_strip(s.as_string(), r.get(0), false, true)); }},
      {"split", [](const Value& s, Args& a) { return str_split_impl(s, a, false); }},
      {"rsplit", [](const Value& s, Args& a) { return str_split_impl(s, a, true); }},
      {"splitlines", [](const Value& s, Args& a) {
         ArgReader r(a, "splitlines", {"keepends"});
         bool keep = r.has(0) && r.get(0)->truthy();
         std::vector<char32_t> cps = utf8::to_code_points(s.as_string());
         List out;
         size_t start = 0;
         for (size_t i = 0; i < cps.size(); ++i) {
           if (!utf8::is_line_break(cps[i])) continue;
           size_t eol = i + 1;
           if (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') eol = i + 2;
           out.emplace_back(utf8::from_code_points(cps, start, keep ? eol : i));
           start = eol;
           i = eol - 1;
         }
         if (start < cps.size()) out.emplace_back(utf8::from_code_points(cps, start, cps.size()));
         return Value::list(std::move(out));
       }},
      {"startswith", [](const Value& s, Args& a) { return Value(affix_match(s, a, true)); }},
      {"endswith", [](const Value& s, Args& a) { return Value(affix_match(s, a, false)); }},
      {"replace", [](const Value& s, Args& a) {
         ArgReader r(a, "replace", {"old", "new", "count"});
         const std::string& from = str_arg(r.get(0), "replace");
         const std::string& to = str_arg(r.get(1), "replace");
         int64_t count = r.has(2) ? to_int_arg(*r.get(2), "count") : -1;
         const std::string& x = s.as_string();
         std::string out;
         if (from.empty()) {  // Python inserts `to` around every character
           std::vector<char32_t> cps = utf8::to_code_points(x);
           int64_t done = 0;
           for (size_t k = 0; k <= cps.size(); ++k) {
             if (count < 0 || done < count) {
               check_string_size(out.size() + to.size(), "replace");
               out += to;
               ++done;
             }
             if (k < cps.size()) utf8::append(out, cps[k]);
           }
           return Value(std::move(out));
         }
         // The result's size first, so a huge one fails before it is built.
         uint64_t matches = 0;
         for (size_t p = x.find(from); p != std::string::npos && (count < 0 || matches < static_cast<uint64_t>(count));
              p = x.find(from, p + from.size()))
           ++matches;
         check_string_size(x.size() - matches * from.size() + matches * to.size(), "replace");
         size_t pos = 0;
         int64_t done = 0;
         while (count < 0 || done < count) {
           size_t p = x.find(from, pos);
           if (p == std::string::npos) break;
           out.append(x, pos, p - pos);
           out += to;
           pos = p + from.size();
           ++done;
         }
         out.append(x, pos, std::string::npos);
         return Value(std::move(out));
       }},
      {"find", [](const Value& s, Args& a) { return Value(find_impl(s, a, "find", false)); }},
      {"rfind", [](const Value& s, Args& a) { return Value(find_impl(s, a, "rfind", true)); }},
      {"index", [](const Value& s, Args& a) {
         int64_t i = find_impl(s, a, "index", false);
         if (i < 0) throw TemplateFault("substring not found");
         return Value(i);
       }},
      {"rindex", [](const Value& s, Args& a) {
         int64_t i = find_impl(s, a, "rindex", true);
         if (i < 0) throw TemplateFault("substring not found");
         return Value(i);
       }},
      {"count", [](const Value& s, Args& a) {
         ArgReader r(a, "count", {"sub"});
         const std::string& sub = str_arg(r.get(0), "count");
         const std::string& x = s.as_string();
         if (sub.empty()) return Value(static_cast<int64_t>(utf8::length(x) + 1));
         int64_t n = 0;
         for (size_t p = x.find(sub); p != std::string::npos; p = x.find(sub, p + sub.size())) ++n;
         return Value(n);
       }},
      {"join", [](const Value& s, Args& a) {
         ArgReader r(a, "join", {"iterable"});
         if (!r.has(0)) throw TemplateFault("join() takes exactly one argument");
         List items = iterate(*r.get(0));
         uint64_t total = 0;
         for (const auto& x : items) {
           if (!x.is_string())
             throw TemplateFault(std::string("sequence item: expected str instance, ") + x.type_name() + " found");
           total += x.as_string().size();
         }
         if (!items.empty()) total += (items.size() - 1) * s.as_string().size();
         check_string_size(total, "join");  // before building it: a long separator multiplies
         std::string out;
         out.reserve(total);
         for (size_t k = 0; k < items.size(); ++k) {
           if (k) out += s.as_string();
           out += items[k].as_string();
         }
         return Value(std::move(out));
       }},
      {"format", str_format},
      {"isdigit", all_chars<utf8::is_digit>},
      {"isdecimal", all_chars<utf8::is_decimal>},
      {"isnumeric", all_chars<utf8::is_digit>},
      {"isalpha", all_chars<utf8::is_alpha>},
      {"isalnum", all_chars<utf8::is_alnum>},
      {"isspace", all_chars<utf8::is_space>},
      {"islower", case_check<false>},
      {"isupper", case_check<true>},
      {"removeprefix", [](const Value& s, Args& a) {
         ArgReader r(a, "removeprefix", {"prefix"});
         const std::string& p = str_arg(r.get(0), "removeprefix");
         const std::string& x = s.as_string();
         return x.compare(0, p.size(), p) == 0 ? Value(x.substr(p.size())) : s;
       }},
      {"removesuffix", [](const Value& s, Args& a) {
         ArgReader r(a, "removesuffix", {"suffix"});
         const std::string& p = str_arg(r.get(0), "removesuffix");
         const std::string& x = s.as_string();
         if (!p.empty() && x.size() >= p.size() && x.compare(x.size() - p.size(), p.size(), p) == 0)
           return Value(x.substr(0, x.size() - p.size()));
         return s;
       }},
      {"center", [](const Value& s, Args& a) { return pad(s, a, "center", '^'); }},
      {"ljust", [](const Value& s, Args& a) { return pad(s, a, "ljust", '<'); }},
      {"rjust", [](const Value& s, Args& a) { return pad(s, a, "rjust", '>'); }},
      {"zfill", [](const Value& s, Args& a) {
         ArgReader r(a, "zfill", {"width"});
         int64_t width = to_int_arg(r.value_or(0, Value(0)), "zfill");
         std::string x = s.as_string();
         int64_t len = static_cast<int64_t>(utf8::length(x));
         if (width <= len) return s;
         check_string_size(static_cast<uint64_t>(width - len) + x.size(), "zfill");
         size_t signlen = (!x.empty() && (x[0] == '+' || x[0] == '-')) ? 1 : 0;
         return Value(x.substr(0, signlen) + std::string(width - len, '0') + x.substr(signlen));
       }},
      {"partition", [](const Value& s, Args& a) {
         ArgReader r(a, "partition", {"sep"});
         const std::string& sep = str_arg(r.get(0), "partition");
         const std::string& x = s.as_string();
         size_t p = x.find(sep);
         if (p == std::string::npos) return Value::tuple({s, Value(""), Value("")});
         return Value::tuple({Value(x.substr(0, p)), Value(sep), Value(x.substr(p + sep.size()))});
       }},
  };
  return m;
}

Value dict_get(const Value& self, Args& args) {
  ArgReader a(args, "get", {"key", "default"});
  if (!a.has(0)) throw TemplateFault("get expected at least 1 argument, got 0");
  if (const Value* v = self.dict_ref().find(*a.get(0))) return *v;
  return a.value_or(1, Value::none());
}

const std::unordered_map<std::string, Method>& dict_methods() {
  static const std::unordered_map<std::string, Method> m = {
      {"get", dict_get},
      {"items", [](const Value& self, Args& a) {
         ArgReader(a, "items", {});
         List out;
         for (const auto& [k, v] : self.dict_ref().entries) out.push_back(Value::tuple({k, v}));
         return Value::list(std::move(out));
       }},
      {"keys", [](const Value& self, Args& a) {
         ArgReader(a, "keys", {});
         List out;
         for (const auto& e : self.dict_ref().entries) out.push_back(e.first);
         return Value::list(std::move(out));
       }},
      {"values", [](const Value& self, Args& a) {
         ArgReader(a, "values", {});
         List out;
         for (const auto& e : self.dict_ref().entries) out.push_back(e.second);
         return Value::list(std::move(out));
       }},
      {"copy", [](const Value& self, Args& a) {
         ArgReader(a, "copy", {});
         return Value::dict(std::make_shared<Dict>(self.dict_ref()));
       }},
      {"pop", [](const Value& self, Args& args) {
         ArgReader a(args, "pop", {"key", "default"});
         if (!a.has(0)) throw TemplateFault("pop expected at least 1 argument, got 0");
         if (const Value* v = self.dict_ref().find(*a.get(0))) {
           Value out = *v;
           self.dict_ref().erase(*a.get(0));
           return out;
         }
         if (a.has(1)) return *a.get(1);
         throw TemplateFault("KeyError: " + a.get(0)->repr());
       }},
      {"setdefault", [](const Value& self, Args& args) {
         ArgReader a(args, "setdefault", {"key", "default"});
         if (!a.has(0)) throw TemplateFault("setdefault expected at least 1 argument, got 0");
         if (const Value* v = self.dict_ref().find(*a.get(0))) return *v;
         Value d = a.value_or(1, Value::none());
         self.dict_ref().set(*a.get(0), d);
         return d;
       }},
      {"update", [](const Value& self, Args& args) {
         if (args.pos.size() > 1) throw TemplateFault("update expected at most 1 argument");
         if (!args.pos.empty()) {
           const Value& other = args.pos[0];
           if (!other.is_dict()) throw TemplateFault("dict.update() needs a dict");
           for (const auto& [k, v] : other.dict_ref().entries) self.dict_ref().set(k, v);
         }
         for (const auto& [k, v] : args.kw) self.dict_ref().set(Value(k), v);
         return Value::none();
       }},
  };
  return m;
}

const std::unordered_map<std::string, Method>& list_methods() {
  static const std::unordered_map<std::string, Method> m = {
      {"append", [](const Value& self, Args& args) {
         ArgReader a(args, "append", {"object"});
         if (!a.has(0)) throw TemplateFault("append() takes exactly one argument (0 given)");
         if (self.is_tuple()) throw TemplateFault("'tuple' object has no attribute 'append'");
         self.items().push_back(*a.get(0));
         return Value::none();
       }},
      {"extend", [](const Value& self, Args& args) {
         ArgReader a(args, "extend", {"iterable"});
         if (!a.has(0)) throw TemplateFault("extend() takes exactly one argument (0 given)");
         List more = iterate(*a.get(0));
         check_list_size(self.items().size() + more.size(), "extend");
         self.items().insert(self.items().end(), more.begin(), more.end());
         return Value::none();
       }},
      {"insert", [](const Value& self, Args& args) {
         ArgReader a(args, "insert", {"index", "object"});
         if (!a.has(1)) throw TemplateFault("insert expected 2 arguments");
         int64_t n = static_cast<int64_t>(self.items().size());
         int64_t i = to_int_arg(*a.get(0), "insert");
         if (i < 0) i = std::max<int64_t>(0, i + n);
         i = std::min(i, n);
         self.items().insert(self.items().begin() + i, *a.get(1));
         return Value::none();
       }},
      {"pop", [](const Value& self, Args& args) {
         ArgReader a(args, "pop", {"index"});
         List& xs = self.items();
         if (xs.empty()) throw TemplateFault("pop from empty list");
         int64_t n = static_cast<int64_t>(xs.size());
         int64_t i = a.has(0) ? to_int_arg(*a.get(0), "pop") : n - 1;
         if (i < 0) i += n;
         if (i < 0 || i >= n) throw TemplateFault("pop index out of range");
         Value out = xs[i];
         xs.erase(xs.begin() + i);
         return out;
       }},
      {"remove", [](const Value& self, Args& args) {
         ArgReader a(args, "remove", {"value"});
         List& xs = self.items();
         for (auto it = xs.begin(); it != xs.end(); ++it)
           if (a.has(0) && py_equal(*it, *a.get(0))) {
             xs.erase(it);
             return Value::none();
           }
         throw TemplateFault("list.remove(x): x not in list");
       }},
      {"index", [](const Value& self, Args& args) {
         ArgReader a(args, "index", {"value"});
         const List& xs = self.items();
         for (size_t k = 0; k < xs.size(); ++k)
           if (a.has(0) && py_equal(xs[k], *a.get(0))) return Value(static_cast<int64_t>(k));
         throw TemplateFault((a.has(0) ? a.get(0)->repr() : std::string("value")) + " is not in list");
       }},
      {"count", [](const Value& self, Args& args) {
         ArgReader a(args, "count", {"value"});
         int64_t n = 0;
         for (const auto& x : self.items())
           if (a.has(0) && py_equal(x, *a.get(0))) ++n;
         return Value(n);
       }},
      {"reverse", [](const Value& self, Args& args) {
         ArgReader(args, "reverse", {});
         std::reverse(self.items().begin(), self.items().end());
         return Value::none();
       }},
      {"copy", [](const Value& self, Args& args) {
         ArgReader(args, "copy", {});
         return Value::list(self.items());
       }},
      {"clear", [](const Value& self, Args& args) {
         ArgReader(args, "clear", {});
         self.items().clear();
         return Value::none();
       }},
  };
  return m;
}

}  // namespace

std::string python_strip(std::string_view s, const Value* chars, bool left, bool right) {
  std::vector<char32_t> cps = utf8::to_code_points(s);
  std::vector<char32_t> set;
  bool use_set = chars && !chars->is_none();
  if (use_set) {
    if (!chars->is_string()) throw TemplateFault("strip arg must be None or str");
    set = utf8::to_code_points(chars->as_string());
  }
  auto strip_me = [&](char32_t c) {
    return use_set ? std::find(set.begin(), set.end(), c) != set.end() : utf8::is_space(c);
  };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_me(cps[b])) ++b;
  if (right)
    while (e > b && strip_me(cps[e - 1])) --e;
  return utf8::from_code_points(cps, b, e);
}

std::string python_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8::decode(s, i);
    utf8::append(out, prev_cased ? utf8::to_lower(c) : utf8::to_title(c));
    prev_cased = utf8::is_cased(c);
  }
  return out;
}

std::string python_capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8::decode(s, i);
    utf8::append(out, first ? utf8::to_title(c) : utf8::to_lower(c));
    first = false;
  }
  return out;
}

Value bound_method(const Value& obj, const std::string& name) {
  const std::unordered_map<std::string, Method>* table = nullptr;
  switch (obj.kind()) {
    case Kind::String: table = &str_methods(); break;
    case Kind::Dict: table = &dict_methods(); break;
    case Kind::List:
    case Kind::Tuple: table = &list_methods(); break;
    default: return Value::undefined();
  }
  auto it = table->find(name);
  if (it == table->end()) return Value::undefined();
  if (obj.is_tuple() && name != "index" && name != "count") return Value::undefined();
  auto c = std::make_shared<Callable>();
  c->name = name;
  Method m = it->second;
  c->fn = [obj, m](Args& args) { return m(obj, args); };
  return Value::callable(c);
}

Value slice_value(const Value& obj, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step_opt) {
  int64_t step = step_opt.value_or(1);
  if (step == 0) throw TemplateFault("slice step cannot be zero");
  std::vector<char32_t> cps;
  int64_t n;
  if (obj.is_string()) {
    cps = utf8::to_code_points(obj.as_string());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_sequence()) {
    n = static_cast<int64_t>(obj.items().size());
  } else {
    throw TemplateFault(std::string("'") + obj.type_name() + "' object is not subscriptable");
  }
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  int64_t b = adjust(start, step < 0 ? n - 1 : 0);
  int64_t e = adjust(stop, step < 0 ? -1 : n);
  // b and e lie in [-1, n]. Counting the items first, in unsigned arithmetic, keeps `i += step`
  // from overflowing (and wrapping to a negative index) for steps near INT64_MAX or INT64_MIN.
  uint64_t span = step > 0 ? (b < e ? static_cast<uint64_t>(e - b) : 0) : (b > e ? static_cast<uint64_t>(b - e) : 0);
  uint64_t ustep = step > 0 ? static_cast<uint64_t>(step) : uint64_t{0} - static_cast<uint64_t>(step);
  uint64_t count = span == 0 ? 0 : (span - 1) / ustep + 1;
  std::vector<int64_t> idx;
  idx.reserve(count);
  for (uint64_t k = 0; k < count; ++k)
    idx.push_back(step > 0 ? b + static_cast<int64_t>(k * ustep) : b - static_cast<int64_t>(k * ustep));
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : idx) utf8::append(out, cps[static_cast<size_t>(i)]);
    return Value(std::move(out));
  }
  List out;
  for (int64_t i : idx) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

}  // namespace tllm::jinja
