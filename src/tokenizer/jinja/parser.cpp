#include "tokenizer/jinja/parser.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string_view>

#include "core/error.h"

namespace tllm::jinja {

namespace {

class Parser {
 public:
  Parser(const Lexer& lexer, std::vector<Token> tokens) : lex_(lexer), toks_(std::move(tokens)) {}

  Body parse_all() {
    std::string which;
    return subparse({}, &which);
  }

 private:
  const Lexer& lex_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;  // nesting of blocks and sub-expressions, bounded so bad input cannot overflow the stack

  // The limit bounds the depth of the syntax tree, which the interpreter walks by recursion.
  static constexpr int kMaxDepth = 500;
  void enter_level() {
    if (++depth_ > kMaxDepth)
      fail("template nests blocks or expressions more than 500 deep (each link of a chain like a ~ b ~ c, "
           "x|f|g or a.b.c counts as a level)");
  }
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) { p.enter_level(); }
    ~DepthGuard() { --p.depth_; }
  };
  // A left-associative chain (a ~ b ~ c, a and b and c, x|f|g, a.b[0]()) nests its tree one
  // level per link, though the parser loops over it: each link counts as a level until the
  // chain ends, or 40,000 terms would overflow the interpreter's stack at render time.
  struct ChainGuard {
    Parser& p;
    int links = 0;
    explicit ChainGuard(Parser& parser) : p(parser) {}
    void link() {
      p.enter_level();
      ++links;
    }
    ~ChainGuard() { p.depth_ -= links; }
  };

  // Flags of the macros and call blocks being parsed: set when their body reads `varargs`.
  std::vector<bool*> varargs_readers_;

  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  void next() {
    if (i_ + 1 < toks_.size()) ++i_;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Text: return "template text";
      case Tok::VarBegin: return "'{{'";
      case Tok::VarEnd: return "'}}'";
      case Tok::BlockBegin: return "'{%'";
      case Tok::BlockEnd: return "'%}'";
      case Tok::Name: return "'" + t.value + "'";
      case Tok::String: return "string literal";
      case Tok::Int:
      case Tok::Float: return "number " + t.value;
      case Tok::Op: return "'" + t.value + "'";
      case Tok::End: return "end of template";
    }
    return "token";
  }

  [[noreturn]] void fail_at(uint32_t offset, const std::string& msg) const {
    SourcePos p = lex_.position(offset);
    throw Error(detail::concat("template syntax error at ", p.line, ":", p.column, ": ", msg));
  }
  [[noreturn]] void fail(const std::string& msg) const { fail_at(cur().offset, msg); }

  bool is_op(std::string_view op) const { return cur().type == Tok::Op && cur().value == op; }
  bool is_name(std::string_view name) const { return cur().type == Tok::Name && cur().value == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) fail("expected '" + std::string(op) + "', got " + describe(cur()));
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) fail(std::string("expected ") + what + ", got " + describe(cur()));
    next();
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) fail("expected a name, got " + describe(cur()));
    std::string n = cur().value;
    next();
    return n;
  }
  void expect_block_end() { expect(Tok::BlockEnd, "'%}'"); }

  template <typename T>
  std::unique_ptr<T> make(uint32_t offset) {
    auto n = std::make_unique<T>();
    n->offset = offset;
    return n;
  }

  // ---- statements ----

  // Parses statements until `{% name %}` with name in `ends` (consumed up to the name).
  Body subparse(std::initializer_list<std::string_view> ends, std::string* which) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      switch (t.type) {
        case Tok::Text: {
          auto s = make<TextStmt>(t.offset);
          s->text = t.value;
          body.push_back(std::move(s));
          next();
          break;
        }
        case Tok::VarBegin: {
          auto s = make<OutputStmt>(t.offset);
          next();
          s->expr = parse_tuple(true, false, {});
          expect(Tok::VarEnd, "'}}'");
          body.push_back(std::move(s));
          break;
        }
        case Tok::BlockBegin: {
          const Token& name = peek();
          if (name.type != Tok::Name) fail_at(name.offset, "expected a tag name, got " + describe(name));
          if (std::find(ends.begin(), ends.end(), name.value) != ends.end()) {
            *which = name.value;
            next();
            next();
            return body;
          }
          next();
          body.push_back(parse_statement());
          break;
        }
        case Tok::End: {
          if (ends.size() == 0) return body;
          std::string want;
          for (auto e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
          fail("unexpected end of template, expected " + want);
        }
        default: fail("unexpected " + describe(t));
      }
    }
  }

  StmtPtr parse_statement() {
    const Token& tag = cur();
    const std::string name = tag.value;
    const uint32_t at = tag.offset;
    next();
    if (name == "if") return parse_if(at);
    if (name == "for") return parse_for(at);
    if (name == "set") return parse_set(at);
    if (name == "macro") return parse_macro(at);
    if (name == "call") return parse_call_block(at);
    if (name == "filter") return parse_filter_block(at);
    if (name == "with") return parse_with(at);
    if (name == "break" || name == "continue") {
      expect_block_end();
      auto s = std::make_unique<SimpleStmt>(name == "break" ? StmtKind::Break : StmtKind::Continue);
      s->offset = at;
      return s;
    }
    if (name == "generation") {  // transformers' AssistantTracker extension: render the body
      expect_block_end();
      auto s = make<ScopeStmt>(at);
      std::string which;
      s->body = subparse({"endgeneration"}, &which);
      expect_block_end();
      return s;
    }
    static const char* const kUnsupported[] = {"include", "import", "from", "extends", "block", "do", "autoescape"};
    for (const char* u : kUnsupported)
      if (name == u) fail_at(at, "tag '" + name + "' is not supported in chat templates");
    if (name.rfind("end", 0) == 0 || name == "else" || name == "elif")
      fail_at(at, "unexpected '" + name + "' (no open block to close)");
    fail_at(at, "encountered unknown tag '" + name + "'");
  }

  StmtPtr parse_if(uint32_t at) {
    auto s = make<IfStmt>(at);
    ExprPtr cond = parse_tuple(false, false, {});
    expect_block_end();
    while (true) {
      std::string which;
      Body body = subparse({"elif", "else", "endif"}, &which);
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (which == "elif") {
        cond = parse_tuple(false, false, {});
        expect_block_end();
        continue;
      }
      if (which == "else") {
        expect_block_end();
        s->else_body = subparse({"endif"}, &which);
      }
      expect_block_end();
      return s;
    }
  }

  Target parse_target(bool allow_attr, std::initializer_list<std::string_view> extra_end) {
    Target t;
    auto at_end = [&] {
      if (cur().type == Tok::BlockEnd || is_op("=") || is_op(")")) return true;
      for (auto e : extra_end)
        if (is_name(e)) return true;
      return false;
    };
    bool parens = skip_op("(");
    while (true) {
      std::string n = expect_name();
      if (allow_attr && !parens && t.names.empty() && is_op(".")) {
        next();
        t.names.push_back(n);
        t.attr = expect_name();
        return t;
      }
      t.names.push_back(n);
      if (!skip_op(",")) break;
      t.is_tuple = true;
      if (at_end()) break;
    }
    if (parens) {
      expect_op(")");
      t.is_tuple = true;
    }
    return t;
  }

  StmtPtr parse_for(uint32_t at) {
    auto s = make<ForStmt>(at);
    s->target = parse_target(false, {"in"});
    if (!skip_name("in")) fail("expected 'in' in for loop, got " + describe(cur()));
    s->iter = parse_tuple(false, false, {"recursive"});
    if (skip_name("if")) s->filter = parse_expression(true);
    if (is_name("recursive")) fail("recursive for loops are not supported");
    expect_block_end();
    std::string which;
    s->body = subparse({"endfor", "else"}, &which);
    if (which == "else") {
      expect_block_end();
      s->else_body = subparse({"endfor"}, &which);
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(uint32_t at) {
    Target target = parse_target(true, {});
    if (skip_op("=")) {
      auto s = make<SetStmt>(at);
      s->target = std::move(target);
      s->value = parse_tuple(true, false, {});
      expect_block_end();
      return s;
    }
    auto s = make<SetBlockStmt>(at);
    s->target = std::move(target);
    while (skip_op("|")) s->filters.push_back(parse_filter_call(nullptr));
    expect_block_end();
    std::string which;
    s->body = subparse({"endset"}, &which);
    expect_block_end();
    return s;
  }

  std::vector<MacroParam> parse_signature() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      const uint32_t name_at = cur().offset;
      p.name = expect_name();
      for (const auto& q : params)
        if (q.name == p.name) fail_at(name_at, "duplicate argument '" + p.name + "' in macro signature");
      if (skip_op("=")) p.default_value = parse_expression(true);
      else if (!params.empty() && params.back().default_value)
        fail("non-default argument '" + p.name + "' follows default argument");
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  StmtPtr parse_macro(uint32_t at) {
    auto s = make<MacroStmt>(at);
    s->name = expect_name();
    s->params = parse_signature();
    expect_block_end();
    std::string which;
    varargs_readers_.push_back(&s->catch_varargs);
    s->body = subparse({"endmacro"}, &which);
    varargs_readers_.pop_back();
    if (cur().type == Tok::Name) next();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(uint32_t at) {
    auto s = make<CallBlockStmt>(at);
    if (is_op("(")) s->caller_params = parse_signature();
    ExprPtr e = parse_expression(true);
    if (e->kind != ExprKind::Call) fail_at(e->offset, "expected a macro call after 'call'");
    s->call.reset(static_cast<CallExpr*>(e.release()));
    expect_block_end();
    std::string which;
    varargs_readers_.push_back(&s->catch_varargs);
    s->body = subparse({"endcall"}, &which);
    varargs_readers_.pop_back();
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(uint32_t at) {
    auto s = make<FilterBlockStmt>(at);
    s->filters.push_back(parse_filter_call(nullptr));
    while (skip_op("|")) s->filters.push_back(parse_filter_call(nullptr));
    expect_block_end();
    std::string which;
    s->body = subparse({"endfilter"}, &which);
    expect_block_end();
    return s;
  }

  StmtPtr parse_with(uint32_t at) {
    auto s = make<WithStmt>(at);
    while (cur().type != Tok::BlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      Target t = parse_target(false, {});
      expect_op("=");
      s->assignments.emplace_back(std::move(t), parse_expression(true));
    }
    expect_block_end();
    std::string which;
    s->body = subparse({"endwith"}, &which);
    expect_block_end();
    return s;
  }

  // ---- expressions ----

  // The lexer gives decimal digits (it converts 0x/0o/0b literals, checking their range).
  int64_t int_literal(const Token& t) const {
    int64_t v = 0;
    for (char c : t.value)
      if (c < '0' || c > '9' || __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v))
        fail_at(t.offset, "integer literal " + t.value + " is out of range (integers are 64-bit)");
    return v;
  }

  // A comma-separated list becomes a tuple ({{ a, b }}, for x in a, b).
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens, std::initializer_list<std::string_view> extra_end) {
    const uint32_t at = cur().offset;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    auto at_end = [&] {
      if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) return true;
      for (auto e : extra_end)
        if (is_name(e)) return true;
      return false;
    };
    while (true) {
      if (!items.empty()) expect_op(",");
      if (at_end()) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail("expected an expression, got " + describe(cur()));
    }
    auto t = std::make_unique<SeqExpr>(ExprKind::TupleLit);
    t->offset = at;
    t->items = std::move(items);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    ExprPtr e = parse_or();
    ChainGuard chain(*this);  // its links also bound `a if c else b if d else ...`, which recurses
    while (is_name("if")) {
      chain.link();
      const uint32_t at = cur().offset;
      next();
      auto c = make<CondExpr>(at);
      c->cond = parse_or();
      if (skip_name("else")) c->else_expr = parse_condexpr();
      c->then_expr = std::move(e);
      c->offset = c->then_expr->offset;
      e = std::move(c);
    }
    return e;
  }

  // Left-associative `a or b or c` / `a and b and c`.
  ExprPtr parse_logic(ExprKind kind, std::string_view word, ExprPtr (Parser::*operand)()) {
    ExprPtr left = (this->*operand)();
    ChainGuard chain(*this);
    while (is_name(word)) {
      chain.link();
      next();
      auto n = std::make_unique<LogicExpr>(kind);
      n->offset = left->offset;
      n->left = std::move(left);
      n->right = (this->*operand)();
      left = std::move(n);
    }
    return left;
  }
  ExprPtr parse_or() { return parse_logic(ExprKind::Or, "or", &Parser::parse_and); }
  ExprPtr parse_and() { return parse_logic(ExprKind::And, "and", &Parser::parse_not); }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto n = make<UnaryExpr>(cur().offset);
      next();
      n->op = "not";
      n->operand = parse_not();
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    std::unique_ptr<CompareExpr> cmp;
    while (true) {
      std::string op;
      if (cur().type == Tok::Op && (cur().value == "==" || cur().value == "!=" || cur().value == "<" ||
                                    cur().value == "<=" || cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == Tok::Name && peek().value == "in") {
        op = "notin";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make<CompareExpr>(first->offset);
        cmp->first = std::move(first);
      }
      cmp->rest.emplace_back(op, parse_math1());
    }
    if (cmp) return cmp;
    return first;
  }

  ExprPtr binary(std::string op, ExprPtr left, ExprPtr right) {
    auto n = std::make_unique<BinaryExpr>();
    n->offset = left->offset;
    n->op = std::move(op);
    n->left = std::move(left);
    n->right = std::move(right);
    return n;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    ChainGuard chain(*this);
    while (is_op("+") || is_op("-")) {
      chain.link();
      std::string op = cur().value;
      next();
      left = binary(op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    ChainGuard chain(*this);
    while (is_op("~")) {
      chain.link();
      next();
      left = binary("~", std::move(left), parse_math2());
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    ChainGuard chain(*this);
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      chain.link();
      std::string op = cur().value;
      next();
      left = binary(op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    ChainGuard chain(*this);
    while (is_op("**")) {
      chain.link();
      next();
      left = binary("**", std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      auto n = make<UnaryExpr>(cur().offset);
      n->op = cur().value;
      next();
      n->operand = parse_unary(false);
      node = std::move(n);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const uint32_t at = t.offset;
    switch (t.type) {
      case Tok::Name: {
        auto lit = make<LiteralExpr>(at);
        if (t.value == "true" || t.value == "True") lit->value = Value(true);
        else if (t.value == "false" || t.value == "False") lit->value = Value(false);
        else if (t.value == "none" || t.value == "None") lit->value = Value::none();
        else {
          auto n = make<NameExpr>(at);
          n->name = t.value;
          if (n->name == "varargs")  // jinja2 marks every enclosing macro, nested ones included
            for (bool* reads : varargs_readers_) *reads = true;
          next();
          return n;
        }
        next();
        return lit;
      }
      case Tok::String: {
        std::string s;
        while (cur().type == Tok::String) {  // adjacent literals concatenate
          s += cur().value;
          next();
        }
        auto lit = make<LiteralExpr>(at);
        lit->value = Value(std::move(s));
        return lit;
      }
      case Tok::Int: {
        auto lit = make<LiteralExpr>(at);
        lit->value = Value(int_literal(t));
        next();
        return lit;
      }
      case Tok::Float: {
        auto lit = make<LiteralExpr>(at);
        // strtod, not stod: 1e400 is inf and 1e-400 is 0.0, as Python's float literals are,
        // where stod throws out_of_range.
        lit->value = Value(std::strtod(t.value.c_str(), nullptr));
        next();
        return lit;
      }
      case Tok::Op:
        if (t.value == "(") {
          next();
          ExprPtr e = parse_tuple(true, true, {});
          expect_op(")");
          return e;
        }
        if (t.value == "[") {
          next();
          auto l = std::make_unique<SeqExpr>(ExprKind::ListLit);
          l->offset = at;
          while (!is_op("]")) {
            if (!l->items.empty()) expect_op(",");
            if (is_op("]")) break;
            l->items.push_back(parse_expression(true));
          }
          expect_op("]");
          return l;
        }
        if (t.value == "{") {
          next();
          auto d = make<DictExpr>(at);
          while (!is_op("}")) {
            if (!d->items.empty()) expect_op(",");
            if (is_op("}")) break;
            ExprPtr k = parse_expression(true);
            expect_op(":");
            d->items.emplace_back(std::move(k), parse_expression(true));
          }
          expect_op("}");
          return d;
        }
        break;
      default: break;
    }
    fail("unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    ChainGuard chain(*this);
    while (true) {
      if (is_op(".") || is_op("[") || is_op("(")) chain.link();
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    ChainGuard chain(*this);
    while (true) {
      if (is_op("|") || is_name("is") || is_op("(")) chain.link();
      if (is_op("|")) {
        next();
        node = parse_filter_call(std::move(node));
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  // Postfix nodes take the offset of their object, so errors point at the expression's start.
  ExprPtr parse_subscript(ExprPtr object) {
    const uint32_t at = object->offset;
    if (skip_op(".")) {
      if (cur().type == Tok::Name) {
        auto g = make<GetAttrExpr>(at);
        g->object = std::move(object);
        g->name = cur().value;
        next();
        return g;
      }
      if (cur().type == Tok::Int) {
        auto g = make<GetItemExpr>(at);
        g->object = std::move(object);
        auto lit = make<LiteralExpr>(cur().offset);
        lit->value = Value(int_literal(cur()));
        g->index = std::move(lit);
        next();
        return g;
      }
      fail("expected a name or number after '.', got " + describe(cur()));
    }
    const uint32_t bracket = cur().offset;
    expect_op("[");
    // [a], [a:b], [a:b:c], [:b], [::c]
    ExprPtr parts[3];
    int colons = 0;
    auto part_end = [&] { return is_op(":") || is_op("]"); };
    if (!part_end()) parts[0] = parse_expression(true);
    while (colons < 2 && skip_op(":")) {
      ++colons;
      if (!part_end()) parts[colons] = parse_expression(true);
    }
    if (colons == 0 && is_op(",")) fail("tuple subscripts are not supported");
    expect_op("]");
    if (colons == 0) {
      if (!parts[0]) fail_at(bracket, "empty subscript");
      auto g = make<GetItemExpr>(at);
      g->object = std::move(object);
      g->index = std::move(parts[0]);
      return g;
    }
    auto s = make<SliceExpr>(at);
    s->object = std::move(object);
    s->start = std::move(parts[0]);
    s->stop = std::move(parts[1]);
    s->step = std::move(parts[2]);
    return s;
  }

  CallArgs parse_call_args() {
    CallArgs args;
    expect_op("(");
    while (!is_op(")")) {
      if (!args.pos.empty() || !args.kw.empty()) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().value == "=") {
        std::string key = cur().value;
        next();
        next();
        args.kw.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!args.kw.empty()) fail("positional argument follows keyword argument");
        args.pos.push_back(parse_expression(true));
      }
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = make<CallExpr>(callee->offset);
    c->callee = std::move(callee);
    c->args = parse_call_args();
    return c;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && peek().type == Tok::Name) {
      next();
      name += "." + cur().value;
      next();
    }
    return name;
  }

  std::unique_ptr<FilterExpr> parse_filter_call(ExprPtr operand) {
    auto f = make<FilterExpr>(cur().offset);
    f->operand = std::move(operand);
    f->name = parse_dotted_name();
    if (is_op("(")) f->args = parse_call_args();
    return f;
  }

  ExprPtr parse_test(ExprPtr operand) {
    auto t = make<TestExpr>(cur().offset);
    next();  // 'is'
    if (skip_name("not")) t->negated = true;
    t->operand = std::move(operand);
    t->name = parse_dotted_name();
    if (is_op("(")) {
      t->args = parse_call_args();
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                cur().type == Tok::Float || is_op("(") || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("you cannot chain multiple tests with 'is'");
      t->args.pos.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }
};

}  // namespace

Body parse_template(const std::string& source, std::string* normalized_source) {
  Lexer lexer(source);
  std::vector<Token> tokens = lexer.tokenize();
  Parser parser(lexer, std::move(tokens));
  Body body = parser.parse_all();
  if (normalized_source) *normalized_source = lexer.source();
  return body;
}

}  // namespace tllm::jinja
