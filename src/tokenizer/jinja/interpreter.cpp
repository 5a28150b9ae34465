#include "tokenizer/jinja/interpreter.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>

#include "core/error.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/utf8.h"

namespace tllm::jinja {

const Value* Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return &it->second;
  }
  return nullptr;
}

void throw_undefined(const Value& v) {
  const std::string& hint = v.undefined_hint();
  throw TemplateFault(hint.empty() ? "value is undefined" : hint);
}

List iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::List:
    case Kind::Tuple: return v.items();
    case Kind::Dict: {
      List keys;
      for (const auto& e : v.dict_ref().entries) keys.push_back(e.first);
      return keys;
    }
    case Kind::String: {
      List chars;
      const std::string& s = v.as_string();
      for (size_t i = 0; i < s.size();) {
        size_t start = i;
        utf8::decode(s, i);
        chars.emplace_back(s.substr(start, i - start));
      }
      return chars;
    }
    default: throw TemplateFault(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

void check_string_size(uint64_t bytes, const char* what) {
  if (bytes > kMaxResultBytes)
    throw TemplateFault(std::string(what) + " result is too large (more than " +
                        std::to_string(kMaxResultBytes >> 20) + " MiB)");
}

void check_list_size(uint64_t items, const char* what) {
  if (items > kMaxResultBytes / sizeof(Value))
    throw TemplateFault(std::string(what) + " result is too large (more than " +
                        std::to_string(kMaxResultBytes / sizeof(Value)) + " items)");
}

size_t spec_number(std::string_view s, size_t& i) {
  uint64_t n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    n = n * 10 + static_cast<uint64_t>(s[i++] - '0');
    if (n > kMaxResultBytes) throw TemplateFault("format width or precision is too large");
  }
  return static_cast<size_t>(n);
}

namespace {

// Pads to `width` code points (Python counts characters, not UTF-8 bytes).
std::string pad_field(std::string body, size_t width, bool left_align) {
  size_t len = utf8::length(body);
  if (len >= width) return body;
  return left_align ? body + std::string(width - len, ' ') : std::string(width - len, ' ') + body;
}

// The digits of |n| in `base` (2..16), without the sign; no negation, so INT64_MIN is fine.
std::string magnitude_digits(int64_t n, int base, bool upper) {
  uint64_t u = n < 0 ? uint64_t{0} - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[u % static_cast<uint64_t>(base)]);
    u /= static_cast<uint64_t>(base);
  } while (u);
  return out;
}

}  // namespace

std::string percent_format(const std::string& fmt, const Value& args) {
  List values = args.is_tuple() ? args.items() : List{args};
  size_t next = 0;
  auto take = [&]() -> const Value& {
    if (next >= values.size()) throw TemplateFault("not enough arguments for format string");
    return values[next++];
  };
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    size_t j = i + 1;
    std::string flags;
    while (j < fmt.size() && std::string_view("-+ #0").find(fmt[j]) != std::string_view::npos) flags += fmt[j++];
    const size_t width = spec_number(fmt, j);
    std::optional<size_t> precision;
    if (j < fmt.size() && fmt[j] == '.') precision = spec_number(fmt, ++j);
    if (j >= fmt.size()) throw TemplateFault("incomplete format");
    const char conv = fmt[j];
    auto flag = [&](char f) { return flags.find(f) != std::string::npos; };
    const bool left = flag('-');
    switch (conv) {
      case '%': out += '%'; break;
      case 's':
      case 'r': {
        const Value& v = take();
        std::string s = conv == 's' ? v.str() : v.repr();
        if (precision) s.resize(utf8::byte_offset(s, *precision));
        out += pad_field(std::move(s), width, left);
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o': {
        // Formatted by hand rather than by printf: Python prints a negative %x as -ff (not two's
        // complement), and %d of a float as its exact integer value, however large.
        const Value& v = take();
        const bool decimal = conv == 'd' || conv == 'i';
        if (decimal ? !v.is_number() : !(v.is_int() || v.is_bool()))
          throw TemplateFault(std::string("%") + conv + " format: " + (decimal ? "a real number" : "an integer") +
                              " is required, not " + v.type_name());
        bool neg;
        std::string digits;
        if (v.is_float()) {
          double d = v.as_float();
          if (std::isnan(d)) throw TemplateFault("cannot convert float NaN to integer");
          if (std::isinf(d)) throw TemplateFault("cannot convert float infinity to integer");
          neg = d <= -1.0;
          digits = c_format("%.0f", std::fabs(std::trunc(d)));  // glibc prints the exact value
        } else {
          int64_t n = v.is_bool() ? static_cast<int64_t>(v.as_bool()) : v.as_int();
          neg = n < 0;
          digits = magnitude_digits(n, decimal ? 10 : conv == 'o' ? 8 : 16, conv == 'X');
        }
        if (precision && digits.size() < *precision) digits.insert(0, *precision - digits.size(), '0');
        std::string prefix = neg ? "-" : flag('+') ? "+" : flag(' ') ? " " : "";
        if (flag('#') && !decimal) prefix += conv == 'o' ? "0o" : conv == 'x' ? "0x" : "0X";
        if (flag('0') && !left && prefix.size() + digits.size() < width)
          digits.insert(0, width - prefix.size() - digits.size(), '0');
        out += pad_field(prefix + digits, width, left);
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        const Value& v = take();
        if (!v.is_number()) throw TemplateFault(std::string("must be real number, not ") + v.type_name());
        // width and precision are capped by spec_number, so they fit snprintf's int.
        std::string spec = "%" + flags + "*.*" + conv;
        out += c_format(spec.c_str(), static_cast<int>(width), static_cast<int>(precision.value_or(6)), v.to_double());
        break;
      }
      case 'c': {
        const Value& v = take();
        std::string ch;
        if (v.is_int() || v.is_bool()) {
          int64_t cp = v.is_bool() ? static_cast<int64_t>(v.as_bool()) : v.as_int();
          if (cp < 0 || cp > 0x10FFFF) throw TemplateFault("%c arg not in range(0x110000)");
          utf8::append(ch, static_cast<char32_t>(cp));
        } else if (v.is_string() && utf8::length(v.as_string()) == 1) {
          ch = v.as_string();
        } else {
          throw TemplateFault(std::string("%c requires an int or a unicode character, not ") + v.type_name());
        }
        out += pad_field(std::move(ch), width, left);
        break;
      }
      default: throw TemplateFault(std::string("unsupported format character '") + conv + "'");
    }
    check_string_size(out.size(), "%-format");
    i = j;
  }
  if (next < values.size() && args.is_tuple())
    throw TemplateFault("not all arguments converted during string formatting");
  return out;
}

namespace {

// The render-depth budget (Interpreter::render_depth_): one unit per eval() and exec() frame,
// kMacroCallWeight per macro call (its own frames: call, std::function, the binding lambda,
// capture, exec_body). Measured with -fstack-usage: a unit costs ~370 bytes of stack at -O2 and
// ~1.3 KiB at -O0, a macro call's own frames ~700 bytes at -O2 and ~1.9 KiB at -O0. So the
// budget is ~1.1 MiB optimized and ~4 MiB unoptimized, inside an 8 MiB thread stack (a server
// worker's, the CLI's main thread) with value recursion (kMaxValueDepth) on top. Templates use a
// few dozen units, a 200-deep macro recursion under 2,000; the parser's 500 nesting limit times
// that recursion could otherwise need ~100,000.
constexpr int kMaxRenderDepth = 3000;
constexpr int kMacroCallWeight = 4;

// Messages for C++ exceptions that are not the interpreter's own (they reach here only from
// a bug or from memory running out), so they still become "template error at L:C: ...".
std::string describe_exception(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of memory while rendering";
  if (dynamic_cast<const std::length_error*>(&e)) return "a result is too large";
  return std::string("internal error: ") + e.what();
}

}  // namespace

struct Interpreter::DepthScope {
  DepthScope(Interpreter& in, int weight) : in_(in), weight_(weight) {
    if (in_.render_depth_ + weight_ > kMaxRenderDepth)
      throw TemplateFault("template nests too deeply while rendering (expressions, blocks and macro calls add up to "
                          "more than " + std::to_string(kMaxRenderDepth) + " levels)");
    in_.render_depth_ += weight_;
  }
  ~DepthScope() { in_.render_depth_ -= weight_; }
  DepthScope(const DepthScope&) = delete;
  DepthScope& operator=(const DepthScope&) = delete;

 private:
  Interpreter& in_;
  int weight_;
};

void Interpreter::emit(std::string_view text) {
  // Counted over the whole render, text captured by macros and set blocks included: that bounds
  // every output buffer, and also the work of a template that builds and discards text forever.
  emitted_ += text.size();
  if (emitted_ > kMaxResultBytes)
    throw TemplateFault("the template's output is too large (more than " + std::to_string(kMaxResultBytes >> 20) +
                        " MiB written, counting text captured by macros and set blocks)");
  out_->append(text);
}

void Interpreter::fail(uint32_t offset, const std::string& msg) const {
  SourcePos p = source_position(source_, offset);
  throw Error(detail::concat("template error at ", p.line, ":", p.column, ": ", msg));
}

std::string Interpreter::render(const Body& body, ScopePtr globals) {
  std::string out;
  out_ = &out;
  Flow f = exec_body(body, globals);
  if (f != Flow::Normal) throw Error("template error: 'break' or 'continue' outside a loop");
  out_ = nullptr;
  return out;
}

std::string Interpreter::capture(const Body& body, const ScopePtr& scope) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  Flow f = exec_body(body, scope);
  out_ = saved;
  if (f != Flow::Normal) throw TemplateFault("'break' or 'continue' outside a loop");
  return buf;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope) {
  for (const auto& s : body) {
    Flow f = exec(*s, scope);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const ScopePtr& scope) {
  try {
    DepthScope depth(*this, 1);
    switch (s.kind) {
      case StmtKind::Text: emit(static_cast<const TextStmt&>(s).text); break;
      case StmtKind::Output: {
        Value v = eval(*static_cast<const OutputStmt&>(s).expr, scope);
        if (v.is_string()) emit(v.as_string());
        else emit(v.str());
        break;
      }
      case StmtKind::If: {
        const auto& n = static_cast<const IfStmt&>(s);
        for (const auto& [cond, body] : n.branches)
          if (eval(*cond, scope).truthy()) return exec_body(body, scope);
        return exec_body(n.else_body, scope);
      }
      case StmtKind::For: exec_for(static_cast<const ForStmt&>(s), scope); break;
      case StmtKind::Set: {
        const auto& n = static_cast<const SetStmt&>(s);
        assign(n.target, eval(*n.value, scope), scope, n.offset);
        break;
      }
      case StmtKind::SetBlock: {
        const auto& n = static_cast<const SetBlockStmt&>(s);
        Value v(capture(n.body, scope));
        for (const auto& f : n.filters) {
          Args args = eval_args(f->args, scope);
          v = apply_filter(f->name, v, args);
        }
        assign(n.target, std::move(v), scope, n.offset);
        break;
      }
      case StmtKind::Macro: {
        const auto& n = static_cast<const MacroStmt&>(s);
        scope->set(n.name, make_macro(&n.params, &n.body, n.name, n.catch_varargs, scope));
        break;
      }
      case StmtKind::CallBlock: {
        const auto& n = static_cast<const CallBlockStmt&>(s);
        Value callee = eval(*n.call->callee, scope);
        Args args = eval_args(n.call->args, scope);
        args.kw.emplace_back("caller", make_macro(&n.caller_params, &n.body, "caller", n.catch_varargs, scope));
        emit(call(callee, args).str());
        break;
      }
      case StmtKind::FilterBlock: {
        const auto& n = static_cast<const FilterBlockStmt&>(s);
        Value v(capture(n.body, scope));
        for (const auto& f : n.filters) {
          Args args = eval_args(f->args, scope);
          v = apply_filter(f->name, v, args);
        }
        emit(v.str());
        break;
      }
      case StmtKind::With: {
        const auto& n = static_cast<const WithStmt&>(s);
        auto inner = std::make_shared<Scope>(scope);
        for (const auto& [target, expr] : n.assignments) assign(target, eval(*expr, scope), inner, n.offset);
        return exec_body(n.body, inner);
      }
      case StmtKind::Break:
      case StmtKind::Continue:
        if (loop_depth_ == 0) fail(s.offset, "'break' or 'continue' outside a loop");
        return s.kind == StmtKind::Break ? Flow::Break : Flow::Continue;
      case StmtKind::Scope: return exec_body(static_cast<const ScopeStmt&>(s).body, scope);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::runtime_error& e) {
    fail(s.offset, e.what());
  } catch (const std::exception& e) {
    fail(s.offset, describe_exception(e));
  }
  return Flow::Normal;
}

void Interpreter::assign(const Target& t, Value v, const ScopePtr& scope, uint32_t offset) {
  if (!t.attr.empty()) {
    const Value* ns = scope->lookup(t.names[0]);
    if (!ns || !ns->is_namespace()) fail(offset, "cannot assign attribute on non-namespace object '" + t.names[0] + "'");
    ns->dict_ref().set(Value(t.attr), std::move(v));
    return;
  }
  if (!t.is_tuple) {
    scope->set(t.names[0], std::move(v));
    return;
  }
  List items = iterate(v);
  if (items.size() != t.names.size())
    fail(offset, items.size() > t.names.size()
                     ? detail::concat("too many values to unpack (expected ", t.names.size(), ")")
                     : detail::concat("not enough values to unpack (expected ", t.names.size(), ", got ",
                                      items.size(), ")"));
  for (size_t k = 0; k < items.size(); ++k) scope->set(t.names[k], std::move(items[k]));
}

void Interpreter::exec_for(const ForStmt& s, const ScopePtr& scope) {
  Value seq = eval(*s.iter, scope);
  if (seq.is_none() || seq.is_number() || seq.is_callable())
    fail(s.iter->offset, std::string("'") + seq.type_name() + "' object is not iterable");
  List items = iterate(seq);
  if (s.filter) {
    List kept;
    for (auto& item : items) {
      auto probe = std::make_shared<Scope>(scope);
      assign(s.target, item, probe, s.offset);
      if (eval(*s.filter, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(s.else_body, scope);
    return;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  // loop.cycle(a, b, ...) picks by the current index; the callable reads it through a shared cell.
  auto index_cell = std::make_shared<int64_t>(0);
  auto cycle = std::make_shared<Callable>();
  cycle->name = "cycle";
  cycle->fn = [index_cell](Args& a) -> Value {
    if (a.pos.empty()) throw TemplateFault("no items for cycling given");
    return a.pos[static_cast<size_t>(*index_cell) % a.pos.size()];
  };
  Value cycle_v = Value::callable(cycle);
  ++loop_depth_;
  for (int64_t k = 0; k < n; ++k) {
    *index_cell = k;
    auto iter_scope = std::make_shared<Scope>(scope);
    assign(s.target, items[k], iter_scope, s.offset);
    auto loop = std::make_shared<Dict>();
    loop->entries.reserve(12);
    loop->entries.emplace_back(Value("index"), Value(k + 1));
    loop->entries.emplace_back(Value("index0"), Value(k));
    loop->entries.emplace_back(Value("revindex"), Value(n - k));
    loop->entries.emplace_back(Value("revindex0"), Value(n - k - 1));
    loop->entries.emplace_back(Value("first"), Value(k == 0));
    loop->entries.emplace_back(Value("last"), Value(k == n - 1));
    loop->entries.emplace_back(Value("length"), Value(n));
    loop->entries.emplace_back(Value("depth"), Value(1));
    loop->entries.emplace_back(Value("depth0"), Value(0));
    if (k > 0) loop->entries.emplace_back(Value("previtem"), items[k - 1]);
    if (k + 1 < n) loop->entries.emplace_back(Value("nextitem"), items[k + 1]);
    loop->entries.emplace_back(Value("cycle"), cycle_v);
    iter_scope->set("loop", Value::dict(loop));
    Flow f = exec_body(s.body, iter_scope);
    if (f == Flow::Break) break;
  }
  --loop_depth_;
}

Value Interpreter::make_macro(const std::vector<MacroParam>* params, const Body* body, const std::string& name,
                              bool catch_varargs, const ScopePtr& closure) {
  auto c = std::make_shared<Callable>();
  c->name = name;
  // The scope holds the macro and the macro needs the scope: capture it weakly and keep it alive
  // for the render in closures_, so the pair is not a reference cycle.
  closures_.push_back(closure);
  std::weak_ptr<Scope> weak_closure = closure;
  c->fn = [this, params, body, name, catch_varargs, weak_closure](Args& args) -> Value {
    if (args.pos.size() > params->size() && !catch_varargs)
      throw TemplateFault("macro '" + name + "' takes not more than " + std::to_string(params->size()) +
                          " argument(s)");
    DepthScope depth(*this, kMacroCallWeight);
    auto local = std::make_shared<Scope>(weak_closure.lock());
    std::vector<bool> bound(params->size(), false);
    List varargs;
    for (size_t k = 0; k < args.pos.size(); ++k) {
      if (k < params->size()) {
        local->set((*params)[k].name, args.pos[k]);
        bound[k] = true;
      } else {
        varargs.push_back(args.pos[k]);
      }
    }
    auto kwargs = std::make_shared<Dict>();
    for (auto& [key, v] : args.kw) {
      size_t k = 0;
      while (k < params->size() && (*params)[k].name != key) ++k;
      if (k < params->size()) {
        if (bound[k]) throw TemplateFault("macro '" + name + "' got multiple values for argument '" + key + "'");
        local->set(key, v);
        bound[k] = true;
      } else if (key == "caller") {
        local->set("caller", v);
      } else {
        kwargs->set(Value(key), v);
      }
    }
    for (size_t k = 0; k < params->size(); ++k) {
      if (bound[k]) continue;
      const MacroParam& p = (*params)[k];
      local->set(p.name, p.default_value ? eval(*p.default_value, local)
                                         : Value::undefined("parameter '" + p.name + "' was not provided"));
    }
    local->set("varargs", Value::tuple(std::move(varargs)));
    local->set("kwargs", Value::dict(kwargs));
    if (call_depth_ >= 200) throw TemplateFault("maximum recursion depth exceeded in macro '" + name + "'");
    int saved_depth = loop_depth_;
    loop_depth_ = 0;
    ++call_depth_;
    std::string text;
    try {
      text = capture(*body, local);
    } catch (...) {
      --call_depth_;
      loop_depth_ = saved_depth;
      throw;
    }
    --call_depth_;
    loop_depth_ = saved_depth;
    return Value(std::move(text));
  };
  return Value::callable(c);
}

Args Interpreter::eval_args(const CallArgs& a, const ScopePtr& scope) {
  Args out;
  out.pos.reserve(a.pos.size());
  for (const auto& e : a.pos) out.pos.push_back(eval(*e, scope));
  for (const auto& [k, e] : a.kw) out.kw.emplace_back(k, eval(*e, scope));
  return out;
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  try {
    DepthScope depth(*this, 1);
    return eval_inner(e, scope);
  } catch (const Error&) {
    throw;
  } catch (const std::runtime_error& ex) {
    fail(e.offset, ex.what());
  } catch (const std::exception& ex) {
    fail(e.offset, describe_exception(ex));
  }
}

Value Interpreter::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::Literal: return static_cast<const LiteralExpr&>(e).value;
    case ExprKind::Name: {
      const auto& n = static_cast<const NameExpr&>(e);
      if (const Value* v = scope->lookup(n.name)) return *v;
      return Value::undefined("'" + n.name + "' is undefined");
    }
    case ExprKind::ListLit:
    case ExprKind::TupleLit: {
      const auto& n = static_cast<const SeqExpr&>(e);
      List items;
      items.reserve(n.items.size());
      for (const auto& x : n.items) items.push_back(eval(*x, scope));
      return e.kind == ExprKind::ListLit ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::DictLit: {
      const auto& n = static_cast<const DictExpr&>(e);
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : n.items) d->set(eval(*k, scope), eval(*v, scope));
      return Value::dict(d);
    }
    case ExprKind::GetAttr: {
      const auto& n = static_cast<const GetAttrExpr&>(e);
      return getattr(eval(*n.object, scope), n.name);
    }
    case ExprKind::GetItem: {
      const auto& n = static_cast<const GetItemExpr&>(e);
      Value obj = eval(*n.object, scope);
      return getitem(obj, eval(*n.index, scope));
    }
    case ExprKind::Slice: {
      const auto& n = static_cast<const SliceExpr&>(e);
      Value obj = eval(*n.object, scope);
      if (obj.is_undefined()) throw_undefined(obj);
      auto opt = [&](const ExprPtr& x) -> std::optional<int64_t> {
        if (!x) return std::nullopt;
        Value v = eval(*x, scope);
        if (v.is_none()) return std::nullopt;
        if (v.is_bool()) return v.as_bool() ? 1 : 0;
        if (!v.is_int()) throw TemplateFault("slice indices must be integers or None");
        return v.as_int();
      };
      return slice_value(obj, opt(n.start), opt(n.stop), opt(n.step));
    }
    case ExprKind::Call: {
      const auto& n = static_cast<const CallExpr&>(e);
      Value callee = eval(*n.callee, scope);
      Args args = eval_args(n.args, scope);
      return call(callee, args);
    }
    case ExprKind::Filter: {
      const auto& n = static_cast<const FilterExpr&>(e);
      Value input = eval(*n.operand, scope);
      Args args = eval_args(n.args, scope);
      return apply_filter(n.name, input, args);
    }
    case ExprKind::Test: {
      const auto& n = static_cast<const TestExpr&>(e);
      Value input = eval(*n.operand, scope);
      Args args = eval_args(n.args, scope);
      bool r = apply_test(n.name, input, args);
      return Value(n.negated ? !r : r);
    }
    case ExprKind::Unary: {
      const auto& n = static_cast<const UnaryExpr&>(e);
      Value v = eval(*n.operand, scope);
      if (n.op == "not") return Value(!v.truthy());
      if (v.is_undefined()) throw_undefined(v);
      if (!v.is_number()) throw TemplateFault("bad operand type for unary " + n.op + ": '" + v.type_name() + "'");
      if (n.op == "+") return v.is_bool() ? Value(static_cast<int64_t>(v.as_bool())) : v;
      if (v.is_float()) return Value(-v.as_float());
      int64_t out;
      if (__builtin_sub_overflow(int64_t{0}, v.is_bool() ? int64_t{v.as_bool()} : v.as_int(), &out))
        throw TemplateFault("integer overflow in unary -");
      return Value(out);
    }
    case ExprKind::Binary: {
      const auto& n = static_cast<const BinaryExpr&>(e);
      Value l = eval(*n.left, scope);
      Value r = eval(*n.right, scope);
      return binary(n.op, l, r);
    }
    case ExprKind::Compare: {
      const auto& n = static_cast<const CompareExpr&>(e);
      Value left = eval(*n.first, scope);
      for (const auto& [op, rhs] : n.rest) {
        Value right = eval(*rhs, scope);
        if (!compare(op, left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::And: {
      const auto& n = static_cast<const LogicExpr&>(e);
      Value l = eval(*n.left, scope);
      return l.truthy() ? eval(*n.right, scope) : l;
    }
    case ExprKind::Or: {
      const auto& n = static_cast<const LogicExpr&>(e);
      Value l = eval(*n.left, scope);
      return l.truthy() ? l : eval(*n.right, scope);
    }
    case ExprKind::CondExpr: {
      const auto& n = static_cast<const CondExpr&>(e);
      if (eval(*n.cond, scope).truthy()) return eval(*n.then_expr, scope);
      if (n.else_expr) return eval(*n.else_expr, scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  return Value();
}

Value Interpreter::call(const Value& callee, Args& args) {
  if (callee.is_callable()) return callee.fn().fn(args);
  if (callee.is_undefined()) throw_undefined(callee);
  throw TemplateFault(std::string("'") + callee.type_name() + "' object is not callable");
}

Value Interpreter::apply_filter(const std::string& name, const Value& input, Args& args) {
  FilterFn f = find_filter(name);
  if (!f) throw TemplateFault("no filter named '" + name + "'");
  return f(*this, input, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& input, Args& args) {
  TestFn t = find_test(name);
  if (!t) throw TemplateFault("no test named '" + name + "'");
  return t(*this, input, args);
}

static std::string object_desc(const Value& v) { return std::string("'") + v.type_name() + " object'"; }

Value Interpreter::getattr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Kind::Undefined: throw_undefined(obj);
    case Kind::Dict: {
      // Python attribute first (dict methods), then the key, as jinja2's getattr does.
      Value m = bound_method(obj, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.dict_ref().find(std::string_view(name))) return *v;
      return Value::undefined(object_desc(obj) + " has no attribute '" + name + "'");
    }
    case Kind::Namespace: {
      if (const Value* v = obj.dict_ref().find(std::string_view(name))) return *v;
      return Value::undefined("'Namespace object' has no attribute '" + name + "'");
    }
    default: {
      Value m = bound_method(obj, name);
      if (!m.is_undefined()) return m;
      if (obj.is_none()) return Value::undefined("'None' has no attribute '" + name + "'");
      return Value::undefined(object_desc(obj) + " has no attribute '" + name + "'");
    }
  }
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Kind::Undefined: throw_undefined(obj);
    case Kind::Dict:
    case Kind::Namespace: {
      if (const Value* v = obj.dict_ref().find(key)) return *v;
      if (key.is_string() && obj.is_dict()) {
        Value m = bound_method(obj, key.as_string());
        if (!m.is_undefined()) return m;
      }
      return Value::undefined(object_desc(obj) + " has no attribute " + key.repr());
    }
    case Kind::List:
    case Kind::Tuple:
    case Kind::String: {
      if (key.is_int() || key.is_bool()) {
        int64_t i = key.is_bool() ? key.as_bool() : key.as_int();
        if (obj.is_string()) {
          const std::string& s = obj.as_string();
          int64_t n = static_cast<int64_t>(utf8::length(s));
          if (i < 0) i += n;
          if (i < 0 || i >= n) return Value::undefined(object_desc(obj) + " has no attribute " + key.repr());
          size_t b = utf8::byte_offset(s, static_cast<size_t>(i));
          size_t e = b;
          utf8::decode(s, e);
          return Value(s.substr(b, e - b));
        }
        const List& xs = obj.items();
        int64_t n = static_cast<int64_t>(xs.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined(object_desc(obj) + " has no attribute " + key.repr());
        return xs[static_cast<size_t>(i)];
      }
      if (key.is_string()) return getattr(obj, key.as_string());
      if (key.is_undefined()) throw_undefined(key);
      return Value::undefined(object_desc(obj) + " has no attribute " + key.repr());
    }
    default:
      if (key.is_string()) return getattr(obj, key.as_string());
      return Value::undefined(object_desc(obj) + " has no attribute " + key.repr());
  }
}

namespace {

int64_t int_of(const Value& v) { return v.is_bool() ? static_cast<int64_t>(v.as_bool()) : v.as_int(); }

// Python's a // b for b != 0. INT64_MIN // -1 is 2^63, which does not fit (and traps in the
// CPU's divide): an overflow error, as + - * give.
int64_t floor_div(int64_t a, int64_t b) {
  if (a == std::numeric_limits<int64_t>::min() && b == -1) throw TemplateFault("integer overflow in //");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

[[noreturn]] void unsupported(const std::string& op, const Value& l, const Value& r) {
  throw TemplateFault("unsupported operand type(s) for " + op + ": '" + l.type_name() + "' and '" + r.type_name() + "'");
}

// Python's int ** int for e >= 0, by squaring (63 steps at most, where a loop of e
// multiplications never ends for the bases 0, 1 and -1, which never overflow).
int64_t int_pow(int64_t base, int64_t e) {
  int64_t out = 1;
  while (true) {
    if ((e & 1) && __builtin_mul_overflow(out, base, &out)) throw TemplateFault("integer overflow in **");
    e >>= 1;
    if (e == 0) return out;
    // Squaring only while bits remain keeps base^(2^k) <= |result|: no overflow unless the result overflows.
    if (__builtin_mul_overflow(base, base, &base)) throw TemplateFault("integer overflow in **");
  }
}

Value repeat(const Value& seq, int64_t n) {
  size_t unit = seq.is_string() ? seq.as_string().size() : seq.items().size();
  if (n > 0 && unit > 0 && static_cast<uint64_t>(n) > (size_t{1} << 28) / unit)
    throw TemplateFault("repetition result is too large");
  if (!seq.is_string() && n > 0) check_list_size(static_cast<uint64_t>(n) * unit, "repetition");
  // An empty sequence or n <= 0 gives an empty result at once (a loop of n empty appends never ends).
  const size_t count = n > 0 && unit > 0 ? static_cast<size_t>(n) : 0;
  if (seq.is_string()) {
    // By doubling: a few memcpys instead of one append per copy ('x' * 200000000).
    std::string out;
    out.reserve(unit * count);
    if (count > 0) out = seq.as_string();
    while (out.size() < unit * count) out.append(out, 0, std::min(out.size(), unit * count - out.size()));
    return Value(std::move(out));
  }
  List out;
  out.reserve(unit * count);
  for (size_t k = 0; k < count; ++k) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

}  // namespace

Value Interpreter::binary(const std::string& op, const Value& l, const Value& r) {
  if (op == "~") {
    std::string ls, rs;  // str() of non-strings; strings are not copied before the size check
    const std::string& a = l.is_string() ? l.as_string() : (ls = l.str());
    const std::string& b = r.is_string() ? r.as_string() : (rs = r.str());
    check_string_size(a.size() + b.size(), "~");
    return Value(a + b);
  }
  if (l.is_undefined()) throw_undefined(l);
  if (r.is_undefined()) throw_undefined(r);
  const bool nums = l.is_number() && r.is_number();
  const bool ints = nums && !l.is_float() && !r.is_float();
  if (op == "+") {
    if (ints) {
      int64_t out;
      if (__builtin_add_overflow(int_of(l), int_of(r), &out)) throw TemplateFault("integer overflow in +");
      return Value(out);
    }
    if (nums) return Value(l.to_double() + r.to_double());
    if (l.is_string() && r.is_string()) {
      check_string_size(l.as_string().size() + r.as_string().size(), "+");
      return Value(l.as_string() + r.as_string());
    }
    if (l.kind() == r.kind() && l.is_sequence()) {
      check_list_size(l.items().size() + r.items().size(), "+");
      List out = l.items();
      out.insert(out.end(), r.items().begin(), r.items().end());
      return l.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
    }
    if (l.is_string()) throw TemplateFault(std::string("can only concatenate str (not \"") + r.type_name() + "\") to str");
    if (l.is_list()) throw TemplateFault(std::string("can only concatenate list (not \"") + r.type_name() + "\") to list");
    unsupported("+", l, r);
  }
  if (op == "-") {
    if (ints) {
      int64_t out;
      if (__builtin_sub_overflow(int_of(l), int_of(r), &out)) throw TemplateFault("integer overflow in -");
      return Value(out);
    }
    if (nums) return Value(l.to_double() - r.to_double());
    unsupported("-", l, r);
  }
  if (op == "*") {
    if (ints) {
      int64_t out;
      if (__builtin_mul_overflow(int_of(l), int_of(r), &out)) throw TemplateFault("integer overflow in *");
      return Value(out);
    }
    if (nums) return Value(l.to_double() * r.to_double());
    if ((l.is_string() || l.is_sequence()) && (r.is_int() || r.is_bool())) return repeat(l, int_of(r));
    if ((r.is_string() || r.is_sequence()) && (l.is_int() || l.is_bool())) return repeat(r, int_of(l));
    unsupported("*", l, r);
  }
  if (op == "/") {
    if (!nums) unsupported("/", l, r);
    if (r.to_double() == 0) throw TemplateFault("division by zero");
    return Value(l.to_double() / r.to_double());
  }
  if (op == "//") {
    if (!nums) unsupported("//", l, r);
    if (r.to_double() == 0) throw TemplateFault("integer division or modulo by zero");
    if (ints) return Value(floor_div(int_of(l), int_of(r)));
    return Value(std::floor(l.to_double() / r.to_double()));
  }
  if (op == "%") {
    if (l.is_string()) return Value(percent_format(l.as_string(), r));
    if (!nums) unsupported("%", l, r);
    if (r.to_double() == 0) throw TemplateFault("integer division or modulo by zero");
    if (ints) {
      int64_t a = int_of(l), b = int_of(r);
      if (b == -1) return Value(int64_t{0});  // INT64_MIN % -1 would trap; x % -1 is always 0
      return Value(a - floor_div(a, b) * b);
    }
    return Value(py_fmod(l.to_double(), r.to_double()));
  }
  if (op == "**") {
    if (!nums) unsupported("** or pow()", l, r);
    if (ints && int_of(r) >= 0) return Value(int_pow(int_of(l), int_of(r)));
    double base = l.to_double(), e = r.to_double();
    if (base == 0 && e < 0) throw TemplateFault("0.0 cannot be raised to a negative power");
    double out = std::pow(base, e);
    if (std::isinf(out) && std::isfinite(base) && std::isfinite(e))
      throw TemplateFault("(34, 'Numerical result out of range')");  // Python's OverflowError
    return Value(out);
  }
  throw TemplateFault("unknown operator " + op);
}

bool Interpreter::compare(const std::string& op, const Value& l, const Value& r) {
  if (op == "==") return py_equal(l, r);
  if (op == "!=") return !py_equal(l, r);
  if (op == "in" || op == "notin") {
    bool found = false;
    switch (r.kind()) {
      case Kind::Undefined: found = false; break;
      case Kind::String:
        if (!l.is_string())
          throw TemplateFault(std::string("'in <string>' requires string as left operand, not ") + l.type_name());
        found = r.as_string().find(l.as_string()) != std::string::npos;
        break;
      case Kind::List:
      case Kind::Tuple:
        for (const auto& x : r.items())
          if (py_equal(x, l)) {
            found = true;
            break;
          }
        break;
      case Kind::Dict:
      case Kind::Namespace: found = r.dict_ref().find(l) != nullptr; break;
      default: throw TemplateFault(std::string("argument of type '") + r.type_name() + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  if (l.is_undefined()) throw_undefined(l);
  if (r.is_undefined()) throw_undefined(r);
  auto order_error = [&]() -> TemplateFault {
    return TemplateFault("'" + op + "' not supported between instances of '" + l.type_name() + "' and '" +
                         r.type_name() + "'");
  };
  try {
    if (op == "<") return py_less(l, r);
    if (op == ">") return py_less(r, l);
    if (op == "<=") return py_less(l, r) || py_equal(l, r);
    if (op == ">=") return py_less(r, l) || py_equal(l, r);
  } catch (const TemplateFault&) {
    throw;  // not a type mismatch: too deep a value
  } catch (const std::runtime_error&) {
    throw order_error();
  }
  throw TemplateFault("unknown comparison " + op);
}

}  // namespace tllm::jinja
