// Syntax tree of a parsed template. Every node keeps the byte offset of its first token so
// runtime errors can name line:column.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace tllm::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Node {
  uint32_t offset = 0;
};

// ---- expressions ----

enum class ExprKind : uint8_t {
  Literal,   // constant value
  Name,      // variable lookup
  ListLit,
  TupleLit,
  DictLit,
  GetAttr,   // obj.name
  GetItem,   // obj[index]
  Slice,     // obj[start:stop:step]
  Call,      // callee(args)
  Filter,    // operand | name(args)
  Test,      // operand is [not] name(args)
  Unary,     // not / - / +
  Binary,    // arithmetic, ~
  Compare,   // a < b [< c ...], ==, !=, in, not in (chains as Python)
  And,
  Or,
  CondExpr,  // a if cond else b
};

struct Expr : Node {
  explicit Expr(ExprKind k) : kind(k) {}
  virtual ~Expr() = default;
  ExprKind kind;
};

struct LiteralExpr : Expr {
  LiteralExpr() : Expr(ExprKind::Literal) {}
  Value value;
};

struct NameExpr : Expr {
  NameExpr() : Expr(ExprKind::Name) {}
  std::string name;
};

struct SeqExpr : Expr {  // list or tuple literal
  explicit SeqExpr(ExprKind k) : Expr(k) {}
  std::vector<ExprPtr> items;
};

struct DictExpr : Expr {
  DictExpr() : Expr(ExprKind::DictLit) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct GetAttrExpr : Expr {
  GetAttrExpr() : Expr(ExprKind::GetAttr) {}
  ExprPtr object;
  std::string name;
};

struct GetItemExpr : Expr {
  GetItemExpr() : Expr(ExprKind::GetItem) {}
  ExprPtr object;
  ExprPtr index;
};

struct SliceExpr : Expr {
  SliceExpr() : Expr(ExprKind::Slice) {}
  ExprPtr object;
  ExprPtr start, stop, step;  // each may be null
};

struct CallArgs {
  std::vector<ExprPtr> pos;
  std::vector<std::pair<std::string, ExprPtr>> kw;
};

struct CallExpr : Expr {
  CallExpr() : Expr(ExprKind::Call) {}
  ExprPtr callee;
  CallArgs args;
};

struct FilterExpr : Expr {  // also used by {% filter %} blocks with a null operand
  FilterExpr() : Expr(ExprKind::Filter) {}
  ExprPtr operand;
  std::string name;
  CallArgs args;
};

struct TestExpr : Expr {
  TestExpr() : Expr(ExprKind::Test) {}
  ExprPtr operand;
  std::string name;
  CallArgs args;
  bool negated = false;
};

struct UnaryExpr : Expr {
  UnaryExpr() : Expr(ExprKind::Unary) {}
  std::string op;  // "not", "-", "+"
  ExprPtr operand;
};

struct BinaryExpr : Expr {
  BinaryExpr() : Expr(ExprKind::Binary) {}
  std::string op;  // + - * / // % ** ~
  ExprPtr left, right;
};

struct CompareExpr : Expr {
  CompareExpr() : Expr(ExprKind::Compare) {}
  ExprPtr first;
  std::vector<std::pair<std::string, ExprPtr>> rest;  // (op, operand); op in == != < <= > >= in notin
};

struct LogicExpr : Expr {  // and / or with Python's short-circuit values
  explicit LogicExpr(ExprKind k) : Expr(k) {}
  ExprPtr left, right;
};

struct CondExpr : Expr {
  CondExpr() : Expr(ExprKind::CondExpr) {}
  ExprPtr cond, then_expr, else_expr;  // else_expr may be null (-> undefined)
};

// ---- statements ----

enum class StmtKind : uint8_t {
  Text,
  Output,     // {{ expr }}
  If,
  For,
  Set,        // {% set target = expr %}
  SetBlock,   // {% set name %}...{% endset %}
  Macro,
  CallBlock,  // {% call macro(...) %}...{% endcall %}
  FilterBlock,
  With,
  Break,
  Continue,
  Scope,      // a body rendered in place ({% generation %})
};

struct Stmt : Node {
  explicit Stmt(StmtKind k) : kind(k) {}
  virtual ~Stmt() = default;
  StmtKind kind;
};

struct TextStmt : Stmt {
  TextStmt() : Stmt(StmtKind::Text) {}
  std::string text;
};

struct OutputStmt : Stmt {
  OutputStmt() : Stmt(StmtKind::Output) {}
  ExprPtr expr;
};

struct IfStmt : Stmt {
  IfStmt() : Stmt(StmtKind::If) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if + elifs
  Body else_body;
};

// An assignment target: a name, a tuple of names, or ns.attr.
struct Target {
  std::vector<std::string> names;  // one name, or several for tuple unpacking
  bool is_tuple = false;
  std::string attr;                // non-empty for `ns.attr`
};

struct ForStmt : Stmt {
  ForStmt() : Stmt(StmtKind::For) {}
  Target target;
  ExprPtr iter;
  ExprPtr filter;  // `for x in xs if cond`
  Body body, else_body;
};

struct SetStmt : Stmt {
  SetStmt() : Stmt(StmtKind::Set) {}
  Target target;
  ExprPtr value;
};

struct SetBlockStmt : Stmt {
  SetBlockStmt() : Stmt(StmtKind::SetBlock) {}
  Target target;
  std::vector<std::unique_ptr<FilterExpr>> filters;  // {% set x | upper %}
  Body body;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct MacroStmt : Stmt {
  MacroStmt() : Stmt(StmtKind::Macro) {}
  std::string name;
  std::vector<MacroParam> params;
  // The body reads `varargs`: extra positional arguments go there. Otherwise they are an
  // error, as jinja2 decides at compile time ("takes not more than N argument(s)").
  bool catch_varargs = false;
  Body body;
};

struct CallBlockStmt : Stmt {
  CallBlockStmt() : Stmt(StmtKind::CallBlock) {}
  std::vector<MacroParam> caller_params;
  bool catch_varargs = false;  // as MacroStmt's, for caller(...)
  std::unique_ptr<CallExpr> call;
  Body body;
};

struct FilterBlockStmt : Stmt {
  FilterBlockStmt() : Stmt(StmtKind::FilterBlock) {}
  std::vector<std::unique_ptr<FilterExpr>> filters;  // applied left to right
  Body body;
};

struct WithStmt : Stmt {
  WithStmt() : Stmt(StmtKind::With) {}
  std::vector<std::pair<Target, ExprPtr>> assignments;
  Body body;
};

struct ScopeStmt : Stmt {
  ScopeStmt() : Stmt(StmtKind::Scope) {}
  Body body;
};

struct SimpleStmt : Stmt {  // break / continue
  explicit SimpleStmt(StmtKind k) : Stmt(k) {}
};

}  // namespace tllm::jinja
