// jinja2 3.1's builtin filters (the subset chat templates use), with transformers' tojson.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <unordered_map>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/json_dump.h"
#include "tokenizer/jinja/utf8.h"

namespace tllm::jinja {

namespace {

int64_t int_value(const Value& v) { return v.is_bool() ? static_cast<int64_t>(v.as_bool()) : v.as_int(); }

Value no_args(Args& args, std::string_view name, const Value& out) {
  ArgReader(args, name, {});
  return out;
}

int64_t length_of(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return 0;
    case Kind::String: return static_cast<int64_t>(utf8::length(v.as_string()));
    case Kind::List:
    case Kind::Tuple: return static_cast<int64_t>(v.items().size());
    case Kind::Dict:
    case Kind::Namespace: return static_cast<int64_t>(v.dict_ref().size());
    default: throw TemplateFault(std::string("object of type '") + v.type_name() + "' has no len()");
  }
}

// jinja2's make_attrgetter: "a.b.0" looks up each part with getitem (ints for digit parts).
Value attr_path(Interpreter& in, const Value& item, const std::string& path) {
  Value cur = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      int64_t index = 0;
      bool fits = true;
      for (char c : part)
        if (__builtin_mul_overflow(index, 10, &index) || __builtin_add_overflow(index, c - '0', &index)) fits = false;
      if (fits) {
        cur = in.getitem(cur, Value(index));
      } else {
        // Python looks up the big int and finds nothing: no list is that long, and no key of
        // ours (at most 64-bit) equals it. Undefined, as jinja2 gives; on Undefined, its error.
        if (cur.is_undefined()) throw_undefined(cur);
        cur = Value::undefined("'" + std::string(cur.type_name()) + " object' has no attribute " + part);
      }
    } else {
      cur = in.getitem(cur, Value(part));
    }
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Value attribute_getter(Interpreter& in, const Value& item, const Value& attribute) {
  if (attribute.is_int()) return in.getitem(item, attribute);
  if (!attribute.is_string()) throw TemplateFault("attribute must be a string or an integer");
  return attr_path(in, item, attribute.as_string());
}

// Sort/unique key: strings lower-cased unless case_sensitive (jinja2's ignore_case).
Value fold_case(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(utf8::lower(v.as_string()));
  return v;
}

std::optional<double> parse_python_float(std::string s) {
  s = python_strip(s, nullptr, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return std::nullopt;
  std::string low = utf8::lower(s);
  std::string body = (low[0] == '+' || low[0] == '-') ? low.substr(1) : low;
  double sign = low[0] == '-' ? -1.0 : 1.0;
  if (body == "inf" || body == "infinity") return sign * HUGE_VAL;
  if (body == "nan") return std::nan("");
  for (char c : body)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' || c == '-')) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// *overflow is set when s is an integer that does not fit in int64.
std::optional<int64_t> parse_python_int(std::string s, int base, bool* overflow) {
  s = python_strip(s, nullptr, true, true);
  if (s.empty()) return std::nullopt;
  bool neg = false;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    i = 1;
  }
  std::string rest = utf8::lower(s.substr(i));
  auto has_prefix = [&](const char* p) { return rest.size() > 2 && rest.compare(0, 2, p) == 0; };
  if ((base == 16 || base == 0) && has_prefix("0x")) {
    base = 16;
    rest = rest.substr(2);
  } else if ((base == 8 || base == 0) && has_prefix("0o")) {
    base = 8;
    rest = rest.substr(2);
  } else if ((base == 2 || base == 0) && has_prefix("0b")) {
    base = 2;
    rest = rest.substr(2);
  } else if (base == 0) {
    base = 10;
  }
  if (rest.empty() || rest.front() == '_' || rest.back() == '_' || rest.find("__") != std::string::npos) return std::nullopt;
  rest.erase(std::remove(rest.begin(), rest.end(), '_'), rest.end());
  // Accumulated negatively, so that "-9223372036854775808" (INT64_MIN, whose magnitude does not
  // fit) parses too.
  int64_t v = 0;
  bool wrapped = false;
  for (char c : rest) {
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : 99;
    if (d >= base) return std::nullopt;
    if (__builtin_mul_overflow(v, base, &v) || __builtin_sub_overflow(v, d, &v)) wrapped = true;
  }
  if (wrapped || (!neg && v == std::numeric_limits<int64_t>::min())) {
    *overflow = true;
    return std::nullopt;
  }
  return neg ? v : -v;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

double python_round(double v, int64_t ndigits) {
  if (!std::isfinite(v)) return v;
  if (ndigits < -308) return v * 0.0;  // 10**-ndigits overflows; Python gives a signed zero
  if (ndigits < 0) {
    double p = std::pow(10.0, static_cast<double>(-ndigits));
    return std::nearbyint(v / p) * p;
  }
  // glibc's printf rounds the exact binary value half-to-even, as Python's round() does.
  return std::strtod(c_format("%.*f", static_cast<int>(std::min<int64_t>(ndigits, 300)), v).c_str(), nullptr);
}

// ---- filters ----

Value f_length(Interpreter&, const Value& v, Args& args) { return no_args(args, "length", Value(length_of(v))); }

Value f_tojson(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions o;
  o.ensure_ascii = a.has(0) && a.get(0)->truthy();
  if (a.has(1) && !a.get(1)->is_none()) {
    const Value& ind = *a.get(1);
    if (ind.is_string()) o.indent = ind.as_string();
    else {
      int64_t n = std::max<int64_t>(0, to_int_arg(ind, "indent"));
      check_string_size(static_cast<uint64_t>(n), "tojson indent");
      o.indent = std::string(static_cast<size_t>(n), ' ');
    }
  }
  if (a.has(2) && !a.get(2)->is_none()) {
    const Value& sep = *a.get(2);
    if (!sep.is_sequence() || sep.items().size() != 2 || !sep.items()[0].is_string() || !sep.items()[1].is_string())
      throw TemplateFault("tojson separators must be a pair of strings");
    o.item_separator = sep.items()[0].as_string();
    o.key_separator = sep.items()[1].as_string();
  }
  o.sort_keys = a.has(3) && a.get(3)->truthy();
  return Value(json_dump(v, o));
}

Value f_trim(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "trim", {"chars"});
  return Value(python_strip(v.str(), a.get(0), true, true));
}

Value f_join(Interpreter& in, const Value& v, Args& args) {
  ArgReader a(args, "join", {"d", "attribute"});
  std::string sep = a.has(0) ? a.get(0)->str() : "";
  std::vector<std::string> items;
  uint64_t total = 0;
  for (const auto& x : iterate(v)) {
    items.push_back((a.has(1) && !a.get(1)->is_none() ? attribute_getter(in, x, *a.get(1)) : x).str());
    total += items.back().size() + (items.size() > 1 ? sep.size() : 0);
  }
  check_string_size(total, "join");  // before building it: a long separator multiplies
  std::string out;
  out.reserve(total);
  for (size_t k = 0; k < items.size(); ++k) {
    if (k) out += sep;
    out += items[k];
  }
  return Value(std::move(out));
}

Value f_items(Interpreter&, const Value& v, Args& args) {
  ArgReader(args, "items", {});
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict()) throw TemplateFault("Can only get item pairs from a mapping.");
  List out;
  for (const auto& [k, x] : v.dict_ref().entries) out.push_back(Value::tuple({k, x}));
  return Value::list(std::move(out));
}

Value f_default(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "default", {"default_value", "boolean"});
  bool boolean = a.has(1) && a.get(1)->truthy();
  if (v.is_undefined() || (boolean && !v.truthy())) return a.value_or(0, Value(""));
  return v;
}

Value f_first(Interpreter&, const Value& v, Args& args) {
  ArgReader(args, "first", {});
  List xs = iterate(v);
  if (xs.empty()) return Value::undefined("No first item, sequence was empty.");
  return xs.front();
}

Value f_last(Interpreter&, const Value& v, Args& args) {
  ArgReader(args, "last", {});
  List xs = iterate(v);
  if (xs.empty()) return Value::undefined("No last item, sequence was empty.");
  return xs.back();
}

Value f_map(Interpreter& in, const Value& v, Args& args) {
  List xs = iterate(v);
  List out;
  auto attr_it = std::find_if(args.kw.begin(), args.kw.end(), [](const auto& kv) { return kv.first == "attribute"; });
  if (args.pos.empty() && attr_it != args.kw.end()) {
    ArgReader a(args, "map", {"attribute", "default"});
    for (const auto& x : xs) {
      Value r = attribute_getter(in, x, *a.get(0));
      if (r.is_undefined() && a.has(1)) r = *a.get(1);
      out.push_back(std::move(r));
    }
    return Value::list(std::move(out));
  }
  if (args.pos.empty() || !args.pos[0].is_string()) throw TemplateFault("map requires a filter name or attribute=");
  std::string name = args.pos[0].as_string();
  Args rest;
  rest.pos.assign(args.pos.begin() + 1, args.pos.end());
  rest.kw = args.kw;
  for (const auto& x : xs) {
    Args call = rest;
    out.push_back(in.apply_filter(name, x, call));
  }
  return Value::list(std::move(out));
}

// select/reject/selectattr/rejectattr share jinja2's select_or_reject.
Value select_impl(Interpreter& in, const Value& v, Args& args, bool by_attr, bool keep_when) {
  size_t off = by_attr ? 1 : 0;
  if (by_attr && args.pos.empty()) throw TemplateFault("selectattr/rejectattr need an attribute name");
  std::optional<std::string> test;
  if (args.pos.size() > off) {
    if (!args.pos[off].is_string()) throw TemplateFault("test name must be a string");
    test = args.pos[off].as_string();
  }
  Args test_args;
  if (args.pos.size() > off + 1) test_args.pos.assign(args.pos.begin() + off + 1, args.pos.end());
  test_args.kw = args.kw;
  List out;
  for (const auto& x : iterate(v)) {
    Value probe = by_attr ? attribute_getter(in, x, args.pos[0]) : x;
    bool ok;
    if (test) {
      Args call = test_args;
      ok = in.apply_test(*test, probe, call);
    } else {
      ok = probe.truthy();
    }
    if (ok == keep_when) out.push_back(x);
  }
  return Value::list(std::move(out));
}

Value f_select(Interpreter& in, const Value& v, Args& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interpreter& in, const Value& v, Args& a) { return select_impl(in, v, a, false, false); }
Value f_selectattr(Interpreter& in, const Value& v, Args& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interpreter& in, const Value& v, Args& a) { return select_impl(in, v, a, true, false); }

Value f_list(Interpreter&, const Value& v, Args& args) {
  ArgReader(args, "list", {});
  return Value::list(iterate(v));
}

Value f_string(Interpreter&, const Value& v, Args& args) { return no_args(args, "string", Value(v.str())); }

// trunc(x) when it fits in int64 (a plain cast of one that does not is undefined behaviour).
std::optional<int64_t> float_to_int(double x) {
  double t = std::trunc(x);
  if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0)) return std::nullopt;
  return static_cast<int64_t>(t);
}

// Python gives an exact big int for any finite float or digit string; ours are 64-bit. A float
// that does not fit is an error (jinja2 too raises OverflowError for inf); a string that does
// not fit gets the default, as jinja2 gives for a string it cannot convert ("abc", "inf", "1e400").

Value f_int(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "int", {"default", "base"});
  Value dflt = a.value_or(0, Value(0));
  int base = static_cast<int>(a.has(1) ? to_int_arg(*a.get(1), "base") : 10);
  switch (v.kind()) {
    case Kind::Int: return v;
    case Kind::Bool: return Value(static_cast<int64_t>(v.as_bool()));
    case Kind::Float: {
      double x = v.as_float();
      if (std::isnan(x)) return dflt;  // jinja2: int(nan) is a ValueError, which gives the default
      if (std::isinf(x)) throw TemplateFault("cannot convert float infinity to integer");
      if (auto i = float_to_int(x)) return Value(*i);
      throw TemplateFault("integer overflow: " + py_float_repr(x) + " does not fit in a 64-bit integer");
    }
    case Kind::String: {
      bool overflow = false;
      if (auto i = parse_python_int(v.as_string(), base, &overflow)) return Value(*i);
      if (overflow) return dflt;  // not via float: "-9223372036854775809" would round to INT64_MIN
      if (auto f = parse_python_float(v.as_string()))
        if (auto i = float_to_int(*f)) return Value(*i);
      return dflt;
    }
    default: return dflt;
  }
}

Value f_float(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "float", {"default"});
  Value dflt = a.value_or(0, Value(0.0));
  switch (v.kind()) {
    case Kind::Int:
    case Kind::Bool:
    case Kind::Float: return Value(v.to_double());
    case Kind::String: {
      if (auto f = parse_python_float(v.as_string())) return Value(*f);
      return dflt;
    }
    default: return dflt;
  }
}

Value f_abs(Interpreter&, const Value& v, Args& args) {
  ArgReader(args, "abs", {});
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int()) {
    if (v.as_int() == std::numeric_limits<int64_t>::min()) throw TemplateFault("integer overflow in abs");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
  throw TemplateFault(std::string("bad operand type for abs(): '") + v.type_name() + "'");
}

Value f_lower(Interpreter&, const Value& v, Args& a) { return no_args(a, "lower", Value(utf8::lower(v.str()))); }
Value f_upper(Interpreter&, const Value& v, Args& a) { return no_args(a, "upper", Value(utf8::upper(v.str()))); }
Value f_capitalize(Interpreter&, const Value& v, Args& a) {
  return no_args(a, "capitalize", Value(python_capitalize(v.str())));
}

// jinja2's title: words start after runs of [-\s({[<]; first letter upper, rest lower.
Value f_title(Interpreter&, const Value& v, Args& args) {
  ArgReader(args, "title", {});
  std::string s = v.str();
  std::string out;
  bool word_start = true;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8::decode(s, i);
    bool sep = utf8::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      utf8::append(out, c);
      word_start = true;
    } else {
      utf8::append(out, word_start ? utf8::to_upper(c) : utf8::to_lower(c));
      word_start = false;
    }
  }
  return Value(std::move(out));
}

Value f_replace(Interpreter& in, const Value& v, Args& args) {
  ArgReader a(args, "replace", {"old", "new", "count"});
  Args call;
  call.pos.push_back(a.value_or(0, Value("")));
  call.pos.push_back(a.value_or(1, Value("")));
  if (a.has(2) && !a.get(2)->is_none()) call.pos.push_back(*a.get(2));
  if (!call.pos[0].is_string() || !call.pos[1].is_string()) throw TemplateFault("replace() arguments must be strings");
  return in.call(bound_method(Value(v.str()), "replace"), call);
}

Value f_safe(Interpreter&, const Value& v, Args& a) { return no_args(a, "safe", v.is_string() ? v : Value(v.str())); }
Value f_escape(Interpreter&, const Value& v, Args& a) { return no_args(a, "escape", Value(html_escape(v.str()))); }

Value f_unique(Interpreter& in, const Value& v, Args& args) {
  ArgReader a(args, "unique", {"case_sensitive", "attribute"});
  bool cs = a.has(0) && a.get(0)->truthy();
  List out, seen;
  for (const auto& x : iterate(v)) {
    Value key = fold_case(a.has(1) && !a.get(1)->is_none() ? attribute_getter(in, x, *a.get(1)) : x, cs);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, key); })) continue;
    seen.push_back(key);
    out.push_back(x);
  }
  return Value::list(std::move(out));
}

// Key for sort/min/max: one attribute, or a comma-separated list of them (compared as a tuple).
Value sort_key(Interpreter& in, const Value& x, const Value* attribute, bool cs) {
  if (!attribute || attribute->is_none()) return fold_case(x, cs);
  if (attribute->is_string() && attribute->as_string().find(',') != std::string::npos) {
    List parts;
    const std::string& s = attribute->as_string();
    size_t start = 0;
    while (true) {
      size_t comma = s.find(',', start);
      std::string p = python_strip(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start), nullptr, true, true);
      parts.push_back(fold_case(attr_path(in, x, p), cs));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return Value::tuple(std::move(parts));
  }
  return fold_case(attribute_getter(in, x, *attribute), cs);
}

Value f_sort(Interpreter& in, const Value& v, Args& args) {
  ArgReader a(args, "sort", {"reverse", "case_sensitive", "attribute"});
  bool reverse = a.has(0) && a.get(0)->truthy();
  bool cs = a.has(1) && a.get(1)->truthy();
  List xs = iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& x : xs) keyed.emplace_back(sort_key(in, x, a.get(2), cs), x);
  // Python's sort with reverse=True keeps equal elements in their original order too.
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& p, const auto& q) {
    return reverse ? py_less(q.first, p.first) : py_less(p.first, q.first);
  });
  List out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value f_reverse(Interpreter&, const Value& v, Args& args) {
  ArgReader(args, "reverse", {});
  if (v.is_string()) {
    std::vector<char32_t> cps = utf8::to_code_points(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value(utf8::from_code_points(cps, 0, cps.size()));
  }
  List xs = iterate(v);
  std::reverse(xs.begin(), xs.end());
  return Value::list(std::move(xs));
}

Value f_sum(Interpreter& in, const Value& v, Args& args) {
  ArgReader a(args, "sum", {"attribute", "start"});
  Value total = a.value_or(1, Value(0));
  for (const auto& x : iterate(v)) {
    Value term = a.has(0) && !a.get(0)->is_none() ? attribute_getter(in, x, *a.get(0)) : x;
    if (!term.is_number() || !total.is_number())
      throw TemplateFault(std::string("unsupported operand type(s) for +: '") + total.type_name() + "' and '" +
                          term.type_name() + "'");
    if (total.is_float() || term.is_float()) total = Value(total.to_double() + term.to_double());
    else {
      int64_t sum;
      if (__builtin_add_overflow(int_value(total), int_value(term), &sum))
        throw TemplateFault("integer overflow in sum");
      total = Value(sum);
    }
  }
  return total;
}

Value min_max(Interpreter& in, const Value& v, Args& args, bool want_max) {
  ArgReader a(args, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  bool cs = a.has(0) && a.get(0)->truthy();
  List xs = iterate(v);
  if (xs.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = sort_key(in, xs[0], a.get(1), cs);
  for (size_t k = 1; k < xs.size(); ++k) {
    Value key = sort_key(in, xs[k], a.get(1), cs);
    if (want_max ? py_less(best_key, key) : py_less(key, best_key)) {
      best = k;
      best_key = key;
    }
  }
  return xs[best];
}

Value f_min(Interpreter& in, const Value& v, Args& a) { return min_max(in, v, a, false); }
Value f_max(Interpreter& in, const Value& v, Args& a) { return min_max(in, v, a, true); }

Value f_round(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "round", {"precision", "method"});
  int64_t precision = a.has(0) ? to_int_arg(*a.get(0), "precision") : 0;
  std::string method = a.has(1) ? a.get(1)->str() : "common";
  if (!v.is_number()) throw TemplateFault(std::string("round() needs a number, got '") + v.type_name() + "'");
  if (method == "common") {
    if (!v.is_float()) return v.is_bool() ? Value(static_cast<int64_t>(v.as_bool())) : v;
    return Value(python_round(v.as_float(), precision));
  }
  if (method != "ceil" && method != "floor") throw TemplateFault("method must be common, ceil or floor");
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.to_double() * scale;
  return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value f_batch(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "batch", {"linecount", "fill_with"});
  int64_t n = to_int_arg(a.value_or(0, Value()), "batch");
  if (n <= 0) throw TemplateFault("batch linecount must be positive");
  List out, cur;
  for (const auto& x : iterate(v)) {
    cur.push_back(x);
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::list(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (a.has(1) && !a.get(1)->is_none()) {
      check_list_size(static_cast<uint64_t>(n), "batch");  // the fill would build a list of n items
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*a.get(1));
    }
    out.push_back(Value::list(std::move(cur)));
  }
  return Value::list(std::move(out));
}

Value f_indent(Interpreter& in, const Value& v, Args& args) {
  ArgReader a(args, "indent", {"width", "first", "blank"});
  std::string ind;
  Value width = a.value_or(0, Value(4));
  if (width.is_string()) {
    ind = width.as_string();
  } else {
    int64_t n = std::max<int64_t>(0, to_int_arg(width, "indent width"));
    check_string_size(static_cast<uint64_t>(n), "indent");
    ind = std::string(static_cast<size_t>(n), ' ');
  }
  bool first = a.has(1) && a.get(1)->truthy();
  bool blank = a.has(2) && a.get(2)->truthy();
  // jinja2 appends "\n" before splitlines() so a trailing newline survives as an empty line.
  Args none;
  Value lines_v = in.call(bound_method(Value(v.str() + "\n"), "splitlines"), none);
  List& lines = lines_v.items();
  check_string_size(static_cast<uint64_t>(lines.size()) * ind.size() + v.str().size(), "indent");
  std::string out;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) out += "\n" + ind;
      out += lines[k].as_string();
    }
  } else {
    out = lines.empty() ? "" : lines[0].as_string();
    for (size_t k = 1; k < lines.size(); ++k) {
      out += "\n";
      if (!lines[k].as_string().empty()) out += ind;
      out += lines[k].as_string();
    }
  }
  if (first) out = ind + out;
  return Value(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, Args& args) {
  ArgReader(args, "wordcount", {});
  std::string s = v.str();
  int64_t n = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8::decode(s, i);
    bool w = c == '_' || utf8::is_alnum(c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Value f_dictsort(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "dictsort", {"case_sensitive", "by", "reverse"});
  bool cs = a.has(0) && a.get(0)->truthy();
  std::string by = a.has(1) ? a.get(1)->str() : "key";
  if (by != "key" && by != "value") throw TemplateFault("You can only sort by either \"key\" or \"value\"");
  bool reverse = a.has(2) && a.get(2)->truthy();
  if (!v.is_dict()) throw TemplateFault("dictsort needs a mapping");
  std::vector<std::pair<Value, Value>> items(v.dict_ref().entries.begin(), v.dict_ref().entries.end());
  size_t pos = by == "key" ? 0 : 1;
  std::stable_sort(items.begin(), items.end(), [&](const auto& p, const auto& q) {
    Value kp = fold_case(pos ? p.second : p.first, cs), kq = fold_case(pos ? q.second : q.first, cs);
    return reverse ? py_less(kq, kp) : py_less(kp, kq);
  });
  List out;
  for (auto& [k, x] : items) out.push_back(Value::tuple({k, x}));
  return Value::list(std::move(out));
}

Value f_attr(Interpreter&, const Value& v, Args& args) {
  ArgReader a(args, "attr", {"name"});
  std::string name = a.value_or(0, Value("")).str();
  // Python getattr only: dict keys are not attributes.
  if (v.is_namespace()) {
    if (const Value* x = v.dict_ref().find(std::string_view(name))) return *x;
    return Value::undefined("'Namespace object' has no attribute '" + name + "'");
  }
  Value m = bound_method(v, name);
  if (!m.is_undefined()) return m;
  return Value::undefined(std::string("'") + v.type_name() + " object' has no attribute '" + name + "'");
}

Value f_format(Interpreter&, const Value& v, Args& args) {
  if (!args.pos.empty() && !args.kw.empty()) throw TemplateFault("can't handle positional and keyword arguments at the same time");
  if (!args.kw.empty()) throw TemplateFault("format with keyword arguments is not supported");
  return Value(percent_format(v.str(), Value::tuple(args.pos)));
}

Value f_center(Interpreter& in, const Value& v, Args& args) {
  ArgReader a(args, "center", {"width"});
  Args call;
  call.pos.push_back(a.value_or(0, Value(80)));
  return in.call(bound_method(Value(v.str()), "center"), call);
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> m = {
      {"length", f_length},       {"count", f_length},       {"tojson", f_tojson},
      {"trim", f_trim},           {"join", f_join},          {"items", f_items},
      {"default", f_default},     {"d", f_default},          {"first", f_first},
      {"last", f_last},           {"map", f_map},            {"select", f_select},
      {"reject", f_reject},       {"selectattr", f_selectattr}, {"rejectattr", f_rejectattr},
      {"list", f_list},           {"string", f_string},      {"int", f_int},
      {"float", f_float},         {"abs", f_abs},            {"lower", f_lower},
      {"upper", f_upper},         {"capitalize", f_capitalize}, {"title", f_title},
      {"replace", f_replace},     {"safe", f_safe},          {"escape", f_escape},
      {"e", f_escape},            {"forceescape", f_escape}, {"unique", f_unique},
      {"sort", f_sort},           {"reverse", f_reverse},    {"sum", f_sum},
      {"min", f_min},             {"max", f_max},            {"round", f_round},
      {"batch", f_batch},         {"indent", f_indent},      {"wordcount", f_wordcount},
      {"dictsort", f_dictsort},   {"attr", f_attr},          {"format", f_format},
      {"center", f_center},
  };
  return m;
}

}  // namespace

FilterFn find_filter(const std::string& name) {
  auto it = filters().find(name);
  return it == filters().end() ? nullptr : it->second;
}

}  // namespace tllm::jinja
